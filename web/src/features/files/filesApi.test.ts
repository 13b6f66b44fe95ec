import { http, HttpResponse } from 'msw';
import { beforeEach, describe, expect, it } from 'vitest';
import { makeStore } from '@/app/store';
import { tokensFromPair } from '@/app/session';
import { resetRefreshState } from '@/app/refresh';
import { apiErrorInfo } from '@/shared/api/errors';
import { server, useMockServer, errorBody } from '@/test/msw';
import { FileRequestError, fetchFileContent, readPrefix, uploadErrorMessage, uploadFile, type FileView } from './filesApi';

useMockServer();

const FILE: FileView = {
  id: '01900000-0000-7000-8000-0000000000f1',
  name: 'hello world.txt',
  size: 12,
  content_type: 'text/plain',
  sha256: 'a'.repeat(64),
  created_at: '2026-01-01T00:00:00Z',
  owner: '01900000-0000-7000-8000-000000000001',
};

function store() {
  return makeStore({
    live: false,
    preloadedState: {
      session: { tokens: tokensFromPair({ access_token: 'old-access', refresh_token: 'refresh-1', expires_in: 900, token_type: 'Bearer' }), endedMessage: null },
    },
  });
}

describe('uploadFile', () => {
  beforeEach(() => resetRefreshState());

  it('posts the raw bytes with the name in the query, the type as Content-Type and the token', async () => {
    let seen: { name: string | null; type: string | null; auth: string | null; body: string } | undefined;
    server.use(
      http.post('*/api/v1/files', async ({ request }) => {
        const url = new URL(request.url);
        seen = { name: url.searchParams.get('name'), type: request.headers.get('content-type'), auth: request.headers.get('authorization'), body: await request.text() };
        return HttpResponse.json(FILE, { status: 201 });
      }),
    );
    const file = await uploadFile(store(), new Blob(['hello world!'], { type: 'text/plain' }), { name: 'hello world.txt' });
    expect(file).toEqual(FILE);
    expect(seen).toEqual({ name: 'hello world.txt', type: 'text/plain', auth: 'Bearer old-access', body: 'hello world!' });
  });

  it('says why the server refused the file', async () => {
    server.use(
      http.post('*/api/v1/files', ({ request }) => {
        const name = new URL(request.url).searchParams.get('name');
        if (name === 'big.bin') return HttpResponse.json(errorBody('file_too_large', 'the file is larger than 10 MiB'), { status: 413 });
        if (name === 'full.bin') return HttpResponse.json(errorBody('quota_exceeded', 'your files use 1 GiB of 1 GiB'), { status: 413 });
        return HttpResponse.json(errorBody('invalid_file', 'bad name'), { status: 422 });
      }),
    );
    const s = store();
    const failure = (name: string) => uploadFile(s, new Blob(['x']), { name }).then(() => null, (e: unknown) => e);
    const big = await failure('big.bin');
    expect(big).toBeInstanceOf(FileRequestError);
    expect((big as FileRequestError).message).toBe('the file is too large for this server (the file is larger than 10 MiB)');
    expect((big as FileRequestError).info).toMatchObject({ status: 413, code: 'file_too_large' });
    expect(((await failure('full.bin')) as Error).message).toBe('your file storage is full (your files use 1 GiB of 1 GiB)');
    expect(((await failure('bad')) as Error).message).toBe('the server refused the file (bad name)');
  });

  it('refreshes an expired session once and sends the file again', async () => {
    const seen: string[] = [];
    server.use(
      http.post('*/api/v1/files', ({ request }) => {
        const auth = request.headers.get('authorization') ?? '';
        seen.push(auth);
        return auth === 'Bearer new-access' ? HttpResponse.json(FILE, { status: 201 }) : HttpResponse.json(errorBody('token_expired', 'expired'), { status: 401 });
      }),
      http.post('*/api/v1/auth/refresh', () => HttpResponse.json({ access_token: 'new-access', refresh_token: 'refresh-2', expires_in: 900, token_type: 'Bearer' })),
    );
    const s = store();
    expect(await uploadFile(s, new Blob(['x']), { name: 'a.txt' })).toEqual(FILE);
    expect(seen).toEqual(['Bearer old-access', 'Bearer new-access']);
    expect(s.getState().session.tokens?.refreshToken).toBe('refresh-2');
  });

  it('can be cancelled', async () => {
    server.use(http.post('*/api/v1/files', () => HttpResponse.json(FILE, { status: 201 })));
    const ctrl = new AbortController();
    ctrl.abort();
    await expect(uploadFile(store(), new Blob(['x']), { name: 'a.txt', signal: ctrl.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('words the other failures too', () => {
    expect(uploadErrorMessage(apiErrorInfo({ status: 413, data: undefined })!)).toBe('the file is too large (The request failed (413).)');
    expect(uploadErrorMessage(apiErrorInfo({ status: 403, data: errorBody('forbidden', 'no') })!)).toBe('you are not allowed to upload files');
    expect(uploadErrorMessage(apiErrorInfo({ status: 404, data: errorBody('route_not_found', 'no route') })!)).toBe('this server does not store files');
    expect(uploadErrorMessage(apiErrorInfo({ status: 'FETCH_ERROR', error: 'x' })!)).toMatch(/Could not reach the Switchyard server/);
  });
});

describe('file content', () => {
  it('asks for the first bytes only for a preview, and reads no more than that', async () => {
    let range: string | null = null;
    server.use(
      http.get(`*/api/v1/files/${FILE.id}/content`, ({ request }) => {
        range = request.headers.get('range');
        // A server that ignores Range: the whole body comes back.
        return new HttpResponse('0123456789'.repeat(1000), { headers: { 'content-type': 'text/plain' } });
      }),
    );
    const response = await fetchFileContent(store(), FILE.id, { range: 16 });
    expect(range).toBe('bytes=0-15');
    const bytes = await readPrefix(response, 16);
    expect(new TextDecoder().decode(bytes)).toBe('0123456789012345');
  });

  it('turns an error answer into a FileRequestError', async () => {
    server.use(http.get(`*/api/v1/files/${FILE.id}/content`, () => HttpResponse.json(errorBody('file_not_found', 'no such file'), { status: 404 })));
    await expect(fetchFileContent(store(), FILE.id)).rejects.toMatchObject({ message: 'no such file', info: { status: 404, code: 'file_not_found' } });
  });
});
