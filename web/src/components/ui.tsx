import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import { describeError } from "../api/client";

export function Card({ title, actions, children, className = "", id }: { title?: ReactNode; actions?: ReactNode; children: ReactNode; className?: string; id?: string }) {
  const headingId = useId();
  return (
    <section className={`card ${className}`} aria-labelledby={title ? headingId : undefined} id={id}>
      {(title || actions) && (
        <header className="card-head">
          {title && <h2 id={headingId}>{title}</h2>}
          {actions && <div className="card-actions">{actions}</div>}
        </header>
      )}
      {children}
    </section>
  );
}

export function PageTitle({ title, children }: { title: string; children?: ReactNode }) {
  useEffect(() => {
    document.title = `${title} · spendgate`;
  }, [title]);
  return (
    <div className="page-title">
      <h1>{title}</h1>
      {children && <div className="page-title-extra">{children}</div>}
    </div>
  );
}

export type Tone = "info" | "warn" | "danger" | "ok";

export function Badge({ tone = "info", children, testId }: { tone?: Tone; children: ReactNode; testId?: string }) {
  return (
    <span className={`badge badge-${tone}`} data-testid={testId}>
      {children}
    </span>
  );
}

/** A progress bar with its figure in text (the bar alone is decoration). */
export function Progress({ value, max, reserved = 0, label }: { value: number; max: number; reserved?: number; label: string }) {
  const pct = max > 0 ? Math.min(100, (value / max) * 100) : 0;
  const reservedPct = max > 0 ? Math.min(100 - pct, (reserved / max) * 100) : 0;
  const tone = pct >= 100 ? "danger" : pct >= 80 ? "warn" : "ok";
  return (
    <div
      className={`progress progress-${tone}`}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={Math.round(pct)}
    >
      <span className="progress-used" style={{ width: `${pct}%` }} />
      {reservedPct > 0 && <span className="progress-reserved" style={{ width: `${reservedPct}%` }} />}
    </div>
  );
}

/** Copy `text` to the clipboard; falls back to selecting it where the Clipboard API is unavailable. */
export function CopyButton({ text, label = "Copy", targetId }: { text: string; label?: string; targetId?: string }) {
  const [done, setDone] = useState<"" | "copied" | "select">("");
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone("copied");
    } catch {
      const target = targetId ? document.getElementById(targetId) : null;
      if (target instanceof HTMLInputElement) target.select();
      setDone("select");
    }
  };
  return (
    <>
      <button type="button" className="btn" onClick={() => void copy()}>
        {done === "copied" ? "Copied" : label}
      </button>
      <span className="sr-only" role="status" aria-live="polite">
        {done === "copied" ? "Copied to the clipboard" : done === "select" ? "Copying is blocked here: the text is selected, press Ctrl+C" : ""}
      </span>
    </>
  );
}

/** A modal <dialog>: focus moves in, Escape closes, focus returns where it was. */
export function Modal({ open, title, onClose, children }: { open: boolean; title: string; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  const headingId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      if (typeof dialog.showModal === "function") dialog.showModal();
      else dialog.setAttribute("open", "");
    } else if (!open && dialog.open) {
      dialog.close();
    }
  }, [open]);
  return (
    <dialog ref={ref} className="modal" aria-labelledby={headingId} onClose={onClose} onCancel={onClose}>
      <h2 id={headingId}>{title}</h2>
      {open && children}
    </dialog>
  );
}

/** A labelled form field; the label is always visible. */
export function Field({ label, hint, children, htmlFor }: { label: string; hint?: ReactNode; children: ReactNode; htmlFor: string }) {
  return (
    <div className="field">
      <label htmlFor={htmlFor}>{label}</label>
      {children}
      {hint && <small className="hint">{hint}</small>}
    </div>
  );
}

/** A line of feedback after a form action. */
export function Notice({ tone, children }: { tone: Tone; children: ReactNode }) {
  return (
    <p className={`notice notice-${tone}`} role={tone === "danger" ? "alert" : "status"}>
      {children}
    </p>
  );
}

/** The end of a create form: its submit button (busy while pending) and what came of it. */
export function FormEnd({ pending, label, busyLabel, problem, error, done }: { pending: boolean; label: string; busyLabel: string; problem?: string | null; error?: unknown; done?: string | null }) {
  return (
    <>
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={pending}>
          {pending ? busyLabel : label}
        </button>
      </div>
      {problem && <Notice tone="danger">{problem}</Notice>}
      {error ? <Notice tone="danger">{describeError(error)}</Notice> : null}
      {done && <Notice tone="ok">{done}</Notice>}
    </>
  );
}

/** A visually hidden data table describing a chart, for screen readers. */
export function ChartTable({ caption, columns, rows }: { caption: string; columns: string[]; rows: Array<Array<string>> }) {
  return (
    // A table ignores a 1px width, so the hiding wrapper is a div.
    <div className="sr-only">
      <table>
        <caption>{caption}</caption>
      <thead>
        <tr>
          {columns.map((c) => (
            <th key={c} scope="col">
              {c}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((row, i) => (
          <tr key={i}>
            {row.map((cell, j) => (
              <td key={j}>{cell}</td>
            ))}
          </tr>
        ))}
      </tbody>
      </table>
    </div>
  );
}
