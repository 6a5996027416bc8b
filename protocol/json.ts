/** JSON.parse that answers undefined for text that is not JSON, for inputs that are validated next anyway. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
