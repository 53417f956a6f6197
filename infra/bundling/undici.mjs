// What Podwarden takes from undici: Agent and ProxyAgent (client-node's dispatchers), fetch (which
// client-node's KubeConfig imports through its generated configuration, though KubeCluster does
// not send with it), and the request() method of every dispatcher (KubeCluster's transport), without
// the rest of undici's index (mock agents, caches, WebSocket, EventSource, ...), which it pulls in
// as one CommonJS module that no bundler can tree-shake. The handler bundles alias `undici` to this file.
import request from '../../node_modules/undici/lib/api/api-request.js';
import Agent from '../../node_modules/undici/lib/dispatcher/agent.js';
import Dispatcher from '../../node_modules/undici/lib/dispatcher/dispatcher.js';
import ProxyAgent from '../../node_modules/undici/lib/dispatcher/proxy-agent.js';
import { fetch } from '../../node_modules/undici/lib/web/fetch/index.js';

// As undici's index does it (for request() only): the method lives on Dispatcher's prototype.
Dispatcher.prototype.request = request;

export { Agent, fetch, ProxyAgent };
