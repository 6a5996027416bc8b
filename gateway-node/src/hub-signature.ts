import { createHmac } from "node:crypto";
import { hubSignatureValue, hubSignedText, hubTimestamp, signedHubHeaders } from "../../protocol/hmac.js";

/**
 * The headers of one signed POST to a hub: protocol/hmac.ts's signature, made with node:crypto. Synchronous and on
 * this thread: WebCrypto's (which the edge and browsers need) imports a key and queues a job on the thread pool for
 * every request, which cost the gateway more than the HMAC itself. Same bytes, same headers.
 */
export function hubRequestHeaders(secret: string, body: string, nowMs: number): Record<string, string> {
  const timestamp = hubTimestamp(nowMs);
  const mac = createHmac("sha256", secret).update(hubSignedText(timestamp, body), "utf8").digest();
  return signedHubHeaders(timestamp, hubSignatureValue(mac));
}
