// Load the Leptos UI (wasm). A file, not an inline script, so the page's CSP needs no exception.
import init from './pkg/ui.js';
init();
