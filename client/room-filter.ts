/**
 * What the hub accepts as a room filter (protocol/socket.ts `RoomFilter`): at most 50 snowflakes (17–20 digits,
 * within 64 bits). The hub closes a socket that sends another (4409), and the filter rides on every reconnect, so
 * it is refused here, where the app can see why.
 */
export function checkRoomFilter(rooms: readonly string[] | undefined): void {
  if (rooms && (rooms.length > 50 || rooms.some((id) => !/^\d{17,20}$/.test(id) || (id.length > 19 && id > "18446744073709551615")))) {
    throw new RangeError("rooms: at most 50 snowflakes");
  }
}
