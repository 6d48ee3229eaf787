// ESLint flat config for the web apps (`npm run lint`, and `make lint` at the top level).
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["dist/", "node_modules/"] },
  js.configs.recommended,
  {
    rules: {
      // `const { dropped, ...kept } = o` is how the code leaves a property out of a copy.
      "no-unused-vars": ["error", { ignoreRestSiblings: true }],
    },
  },
  {
    // The apps run in the browser; their modules are bundled by esbuild.
    files: ["src/**/*.js"],
    languageOptions: { sourceType: "module", globals: { ...globals.browser } },
  },
  {
    // The reps' app's service worker.
    files: ["src/app/sw.js"],
    languageOptions: { globals: { ...globals.serviceworker } },
  },
  {
    // Build script and tests run in node; the browser tests also pass functions to
    // page.evaluate, which run in the page, so they see the browser's globals too.
    files: ["*.js", "*.mjs", "tests/**/*.mjs"],
    languageOptions: { sourceType: "module", globals: { ...globals.node, ...globals.browser } },
  },
];
