import '@testing-library/jest-dom/vitest';
import { cleanup } from '@testing-library/react';
import { afterEach } from 'vitest';
import { forgetRecentEvents } from '@/features/tasks/recentEvents';

afterEach(() => {
  cleanup();
  localStorage.clear();
  forgetRecentEvents();
});
