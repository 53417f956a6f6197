/**
 * Runs ElasticMQ's server (org.elasticmq.server.Main, configured by -Dconfig.file) and exits when
 * its stdin closes, so it dies with the test runner that spawned it even if that runner is killed.
 *
 * Usage: java -Dconfig.file=elasticmq.conf -cp 'lib/*' ElasticMQLoopback.java
 */
public class ElasticMQLoopback {
  public static void main(String[] args) throws Exception {
    Thread watcher = new Thread(() -> {
      try {
        while (System.in.read() != -1) {
          // Only end-of-file matters: the parent closed the pipe or died.
        }
      } catch (java.io.IOException ignored) {
        // A broken pipe means the same as end-of-file.
      }
      System.exit(0);
    }, "stdin-watcher");
    watcher.setDaemon(true);
    watcher.start();
    org.elasticmq.server.Main.main(args);
  }
}
