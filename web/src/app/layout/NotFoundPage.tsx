import { Link } from 'react-router';
import { EmptyState } from '@/shared/ui/Feedback';

export function NotFoundPage() {
  return (
    <EmptyState title="There is no page here.">
      <Link to="/">Go to the overview</Link>
    </EmptyState>
  );
}
