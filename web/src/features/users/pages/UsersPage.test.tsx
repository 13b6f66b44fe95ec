import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { renderWithStore, signedInStore, USER_ID } from '@/test/utils';
import { server, useMockServer, errorBody } from '@/test/msw';
import { UsersPage } from './UsersPage';

useMockServer();

const user = (id: string, email: string, role: string, disabled = false) => ({ id, email, role, disabled, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' });

describe('UsersPage', () => {
  it('says clearly when the server has no user administration', async () => {
    server.use(http.get('*/api/v1/users', () => HttpResponse.json(errorBody('route_not_found', 'no such endpoint: /api/v1/users'), { status: 404 })));
    renderWithStore(<UsersPage />);
    expect(await screen.findByText('User administration is not available on this server.')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Add user' })).toBeNull();
  });

  it('lists users, changes a role, and cannot demote yourself', async () => {
    const user1 = userEvent.setup();
    const patches: unknown[] = [];
    let users = [user(USER_ID, 'admin@example.com', 'admin'), user('u2', 'op@example.com', 'operator')];
    server.use(
      http.get('*/api/v1/users', () => HttpResponse.json({ items: users })),
      http.patch('*/api/v1/users/:id', async ({ params, request }) => {
        const body = (await request.json()) as Record<string, unknown>;
        patches.push({ id: params.id, ...body });
        users = users.map((u) => (u.id === params.id ? { ...u, ...body } : u));
        return HttpResponse.json(users.find((u) => u.id === params.id));
      }),
    );
    renderWithStore(<UsersPage />);
    const own = await screen.findByLabelText('Role of admin@example.com');
    expect(own).toBeDisabled();
    await user1.selectOptions(screen.getByLabelText('Role of op@example.com'), 'viewer');
    expect(await screen.findByDisplayValue('viewer')).toBeInTheDocument();
    expect(patches).toEqual([{ id: 'u2', role: 'viewer' }]);
  });

  it('is for admins only', () => {
    renderWithStore(<UsersPage />, { store: signedInStore('operator') });
    expect(screen.getByText('Only admins manage users.')).toBeInTheDocument();
  });
});
