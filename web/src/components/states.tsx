// Loading, empty and error states that say what to do next.

import { Component, type ReactNode } from "react";
import { ApiError, describeError } from "../api/client";

export function Loading({ what = "data" }: { what?: string }) {
  return (
    <div className="state state-loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      Loading {what}…
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="state state-empty">
      <p className="state-title">{title}</p>
      {children && <div className="state-hint">{children}</div>}
    </div>
  );
}

export function ErrorState({ error, retry }: { error: unknown; retry?: () => void }) {
  const status = error instanceof ApiError ? error.status : null;
  return (
    <div className="state state-error" role="alert">
      <p className="state-title">
        {status === 0 ? "The gateway cannot be reached" : status === 503 ? "The gateway is not ready" : "This could not be loaded"}
      </p>
      <p className="state-hint">{describeError(error)}</p>
      {retry && (
        <button type="button" className="btn" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

interface QueryLike<T> {
  data: T | undefined;
  error: Error | null;
  isPending: boolean;
  refetch: () => unknown;
}

/**
 * Render `children(data)` once a query has data; its loading, error and empty
 * states otherwise. Stale data stays on screen while a refresh runs.
 */
export function Loaded<T>({
  query,
  what,
  empty,
  children,
}: {
  query: QueryLike<T>;
  what?: string;
  empty?: (data: T) => ReactNode | null;
  children: (data: T) => ReactNode;
}) {
  if (query.data === undefined) {
    if (query.error) return <ErrorState error={query.error} retry={() => void query.refetch()} />;
    return <Loading what={what} />;
  }
  const emptyState = empty?.(query.data);
  if (emptyState) return <>{emptyState}</>;
  return <>{children(query.data)}</>;
}

interface BoundaryState {
  error: Error | null;
}

/** Keeps one broken page from blanking the whole dashboard; resets when `resetKey` changes. */
export class ErrorBoundary extends Component<{ children: ReactNode; resetKey: string }, BoundaryState> {
  state: BoundaryState = { error: null };

  static getDerivedStateFromError(error: Error): BoundaryState {
    return { error };
  }

  componentDidUpdate(previous: { resetKey: string }): void {
    if (previous.resetKey !== this.props.resetKey && this.state.error) this.setState({ error: null });
  }

  render(): ReactNode {
    if (!this.state.error) return this.props.children;
    return (
      <div className="state state-error" role="alert">
        <p className="state-title">This page failed to show</p>
        <p className="state-hint">
          {this.state.error.message}. Reload the page; if it happens again, the API answered something the dashboard does not understand: please report it
          with this message.
        </p>
        <button type="button" className="btn" onClick={() => this.setState({ error: null })}>
          Try again
        </button>
      </div>
    );
  }
}
