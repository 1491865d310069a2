// The node runtime as an ES module entry, for launchers that name instance.mjs. It is instance.cjs
// itself: start that file directly, since an ES module entry costs node's ESM loader at every cold start.
import './instance.cjs';
