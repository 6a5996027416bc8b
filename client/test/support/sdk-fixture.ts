import { afterEach } from "vitest";
import { connect, type ConnectOptions, type RealtimeConnection } from "../../connect.js";
import { ScriptedHub, StallServer } from "./hub.js";

/**
 * The scripted hubs and SDK connections a test opens, all closed after each test: the connections first, so none
 * reconnects to a closing hub. Call once per test file.
 */
export function sdkFixture() {
  const connections: RealtimeConnection[] = [];
  const servers: Array<ScriptedHub | StallServer> = [];
  afterEach(async () => {
    for (const connection of connections.splice(0)) connection.close();
    for (const server of servers.splice(0)) await server.close();
  });
  return {
    async startHub(): Promise<ScriptedHub> {
      const hub = await ScriptedHub.start();
      servers.push(hub);
      return hub;
    },
    async startStall(): Promise<StallServer> {
      const stall = await StallServer.start();
      servers.push(stall);
      return stall;
    },
    connect(options: ConnectOptions): RealtimeConnection {
      const connection = connect(options);
      connections.push(connection);
      return connection;
    },
  };
}
