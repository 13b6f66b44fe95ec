import { isRouteErrorResponse, useRouteError } from 'react-router';

export function RouteError() {
  const error = useRouteError();
  const chunkFailed = error instanceof Error && /dynamically imported module|Importing a module script failed|Failed to fetch/i.test(error.message);
  return (
    <main className="route-error" role="alert">
      <h1>{chunkFailed ? 'Switchyard was updated' : 'This page failed'}</h1>
      <p>
        {chunkFailed
          ? 'A newer version of the interface is available. Reload the page to use it.'
          : isRouteErrorResponse(error)
            ? `${error.status} ${error.statusText}`
            : error instanceof Error
              ? error.message
              : 'An unexpected error happened.'}
      </p>
      <p>
        <button type="button" className="btn btn-primary" onClick={() => window.location.reload()}>
          Reload
        </button>{' '}
        <a href="/">Go to the overview</a>
      </p>
    </main>
  );
}
