import { defineConfig } from 'vite';

/** The dashboard's build: dist/ holds index.html and hashed assets, served at / by @tributary/api. */
export default defineConfig({
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 600 },
});
