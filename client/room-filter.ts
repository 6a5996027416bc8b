/**
 * What the hub accepts as a room filter (protocol/socket.ts `RoomFilter`): at most 50 snowflakes. The hub closes
 * a socket that sends another (4409), and the filter rides on every reconnect, so it is refused here, where the
 * app can see why. (The hub's bound of 64 bits on a 20-digit id is left to the hub: no Discord id comes near it.)
 */
export function checkRoomFilter(rooms: readonly string[] | undefined): void {
  if (rooms && (rooms.length > 50 || rooms.some((id) => !/^\d{17,20}$/.test(id)))) throw new RangeError("rooms");
}
