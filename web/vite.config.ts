/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

// The API server `npm run dev` talks to (see README.md).
const api = process.env.SWITCHYARD_URL ?? 'http://127.0.0.1:8081';

export default defineConfig({
  base: '/',
  plugins: [react()],
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  server: {
    port: 5173,
    proxy: {
      // Not '/api': that prefix would also catch the UI's own /api-keys page.
      '^/api/': {
        target: api,
        changeOrigin: true,
        ws: true,
        configure(proxy) {
          // Node sends a proxied response's headers only with its first body chunk: an idle
          // event stream would look stuck. Flush them at once.
          proxy.on('proxyRes', (proxyRes, _req, res) => {
            if (String(proxyRes.headers['content-type'] ?? '').startsWith('text/event-stream')) {
              process.nextTick(() => res.flushHeaders());
            }
          });
        },
      },
      '/healthz': { target: api, changeOrigin: true },
      '/readyz': { target: api, changeOrigin: true },
    },
  },
  test: {
    environment: 'jsdom',
    globals: true,
    setupFiles: ['./src/test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
    css: false,
    pool: 'threads',
    maxWorkers: 2,
  },
});
