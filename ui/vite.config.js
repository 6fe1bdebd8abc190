// Vite builds the UI into plain files that `flowvault serve` serves at /
// (docs/ui.md). `make` passes --outDir $(BUILD)/ui; `npm run build` alone
// writes dist/. Relative asset paths, so the UI also works below a prefix
// behind a proxy; hashed names under assets/ may be cached for good.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    target: 'es2020',
    sourcemap: false,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
  server: {
    // `npm run dev` against a running `flowvault serve` on the default port.
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
});
