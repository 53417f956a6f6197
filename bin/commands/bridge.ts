import { Bridge } from '../../lib/bridge/bridge.ts';
import {
  BridgeConfigError,
  bridgeConnection,
  bridgeUsage,
  parseBridgeConfig,
} from '../../lib/bridge/config.ts';
import { createLogger } from '../../lib/bridge/logger.ts';
import { kubeConfigFor } from '../../lib/cluster/connections.ts';
import { type CommandIO, EXIT, writeLine } from '../command.ts';

const ABOUT = `Watches the managed pods and their events in one cluster and forwards them to an EventBridge bus
as "Pod Changed" and "Kubernetes Event" entries (source podwarden.bridge). Run 2 replicas: they elect
a leader on a Lease, and only the leader forwards. Serves /healthz, /readyz and /metrics; logs JSON
lines on stdout; on SIGTERM stops watching, delivers what is queued, and hands the lease back.`;

export async function run(argv: string[], io: CommandIO): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    writeLine(io.stdout, `${bridgeUsage()}\n\n${ABOUT}`);
    return EXIT.ok;
  }
  let config: ReturnType<typeof parseBridgeConfig>;
  try {
    config = parseBridgeConfig(argv, process.env);
  } catch (error) {
    if (!(error instanceof BridgeConfigError)) throw error;
    writeLine(io.stderr, `podwarden bridge: ${error.message}\n(see podwarden bridge --help)`);
    return EXIT.usage;
  }
  const log = createLogger({
    sink: io.stdout,
    level: config.logLevel,
    fields: { cluster: config.cluster, identity: config.identity },
  });
  let bridge: Bridge;
  try {
    const kubeConfig = await kubeConfigFor(bridgeConnection(config, process.env));
    bridge = new Bridge(config, { kubeConfig, log });
    await bridge.start();
  } catch (error) {
    log.error('the bridge could not start', { error });
    return EXIT.failure;
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log.info('signal received', { signal });
  await bridge.shutdown();
  return EXIT.ok;
}
