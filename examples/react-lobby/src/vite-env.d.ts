/// <reference types="vite/client" />

interface ImportMetaEnv {
  readonly VITE_REALTIME_URL?: string;
  readonly VITE_IDP_URL?: string;
  readonly VITE_CLIENT_ID?: string;
}
