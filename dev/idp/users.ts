/** The people you can sign in as locally. `sub` is what the Worker sees as the user id. */
export const LOCAL_USERS = [
  { sub: "310000000000000001", login: "alice", name: "Alice", roles: [] as string[] },
  { sub: "310000000000000002", login: "bob", name: "Bob", roles: [] as string[] },
  { sub: "310000000000000003", login: "admin", name: "Admin", roles: ["admin"] },
] as const;

export type LocalUser = (typeof LOCAL_USERS)[number];

export function localUser(sub: string): LocalUser | undefined {
  return LOCAL_USERS.find((user) => user.sub === sub);
}
