// node:https without the ESM facade (see node-http.cjs). The handler bundles alias `https` and
// `node:https` to this file.
module.exports = process.getBuiltinModule('node:https');
