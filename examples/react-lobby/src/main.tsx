import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App.js";
import { restoreSession, signIn } from "./auth.js";
import "./styles.css";

const root = createRoot(document.getElementById("root")!);

try {
  const session = await restoreSession();
  root.render(
    <StrictMode>
      {session ? (
        <App session={session} />
      ) : (
        <main className="signed-out">
          <h1>Spell Coven lobby</h1>
          <button data-testid="sign-in" onClick={() => void signIn()}>
            Sign in
          </button>
        </main>
      )}
    </StrictMode>,
  );
} catch (error) {
  root.render(<p role="alert">{error instanceof Error ? error.message : String(error)}</p>);
}
