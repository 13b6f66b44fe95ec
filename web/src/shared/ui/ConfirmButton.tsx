// A button that asks before doing something that cannot be undone, and shows the server's
// answer if it fails.
import { useState, type ReactNode } from 'react';
import { ErrorAlert } from './Feedback';
import { Modal } from './Modal';

interface Props {
  label: ReactNode;
  title: string;
  message: ReactNode;
  confirmLabel: string;
  onConfirm: () => Promise<unknown>;
  danger?: boolean;
  className?: string;
  disabled?: boolean;
  'aria-label'?: string;
}

export function ConfirmButton({ label, title, message, confirmLabel, onConfirm, danger, className, disabled, ...rest }: Props) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      setOpen(false);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" className={className ?? `btn ${danger ? 'btn-danger' : ''}`} onClick={() => setOpen(true)} disabled={disabled} aria-label={rest['aria-label']}>
        {label}
      </button>
      {open && (
        <Modal title={title} onClose={() => !busy && setOpen(false)} initialFocus="[data-cancel]">
          <div className="modal-body">{message}</div>
          <ErrorAlert error={error} />
          <div className="modal-actions">
            <button type="button" className="btn" data-cancel onClick={() => setOpen(false)} disabled={busy}>
              Keep it
            </button>
            <button type="button" className={`btn ${danger ? 'btn-danger' : 'btn-primary'}`} onClick={confirm} disabled={busy}>
              {busy ? 'Working…' : confirmLabel}
            </button>
          </div>
        </Modal>
      )}
    </>
  );
}
