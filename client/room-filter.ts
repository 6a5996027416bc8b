/**
 * What the hub accepts as a room filter (protocol/socket.ts `RoomFilter`): at most 50 snowflakes. The hub closes a
 * socket that sends more (4409), and the filter rides on every reconnect, so it is refused here, where the app
 * can see why.
 */
export const MAX_FILTER_ROOMS = 50;
const SNOWFLAKE = /^\d{17,20}$/;

export function checkRoomFilter(rooms: readonly string[] | undefined): void {
  if (rooms === undefined) return;
  if (rooms.length > MAX_FILTER_ROOMS) throw new RangeError(`a room filter takes at most ${MAX_FILTER_ROOMS} rooms, not ${rooms.length}`);
  const bad = rooms.find((id) => typeof id !== "string" || !SNOWFLAKE.test(id) || (id.length === 20 && id > "18446744073709551615"));
  if (bad !== undefined) throw new RangeError(`not a room id (a Discord snowflake): ${JSON.stringify(bad)}`);
}
