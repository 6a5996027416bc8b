// A bare page for the browser tests: the SDK with transport "auto", rendering live presence.
import { connect } from "../../client/index.js";

declare global {
  interface Window {
    startPresence(token: string): void;
  }
}

window.startPresence = (token) => {
  const status = document.getElementById("status")!;
  const list = document.getElementById("rooms")!;
  const connection = connect({
    url: `ws://${location.host}/ws`,
    transport: "auto",
    getToken: async () => token,
    onStatus: (next) => {
      status.textContent = next;
    },
  });
  connection.presence.subscribe(() => {
    list.replaceChildren(
      ...connection.presence.getSnapshot().rooms.map((room) => {
        const item = document.createElement("li");
        item.dataset.channelId = room.channelId;
        item.textContent = room.name;
        for (const member of room.members) {
          const span = document.createElement("span");
          span.dataset.userId = member.userId;
          span.textContent = member.username ?? member.userId;
          item.append(span);
        }
        return item;
      }),
    );
  });
};
