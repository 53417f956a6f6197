// What @kubernetes/client-node takes from undici (fetch, Agent, ProxyAgent), without the rest of
// undici's index (mock agents, caches, WebSocket, EventSource, ...), which it pulls in as one
// CommonJS module that no bundler can tree-shake. The handler bundles alias `undici` to this file.
import Agent from '../../node_modules/undici/lib/dispatcher/agent.js';
import ProxyAgent from '../../node_modules/undici/lib/dispatcher/proxy-agent.js';
import { fetch } from '../../node_modules/undici/lib/web/fetch/index.js';

export { Agent, fetch, ProxyAgent };
