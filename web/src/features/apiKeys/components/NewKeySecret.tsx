import { CopyButton } from '@/shared/ui/CopyButton';
import type { CreatedKey } from '@/shared/api/types';

export function NewKeySecret({ created, onDone }: { created: CreatedKey; onDone: () => void }) {
  return (
    <section className="card secret-card" aria-labelledby="secret-title" data-testid="new-key-secret">
      <h2 id="secret-title">Your new key “{created.key.name}”</h2>
      <p>
        <strong>Copy it now: you won't see this again.</strong> Switchyard stores only a hash of it. Use it as <code>Authorization: Bearer …</code>.
      </p>
      <div className="secret-row">
        <input className="mono secret" readOnly value={created.secret} aria-label="API key secret" onFocus={(e) => e.currentTarget.select()} />
        <CopyButton text={created.secret} label="Copy key" />
      </div>
      <button type="button" className="btn" onClick={onDone}>
        I have stored it
      </button>
    </section>
  );
}
