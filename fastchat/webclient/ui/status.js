/**
 * The status line under the top bar: connecting, disconnected, reconnecting in N s (with
 * "Reconnect now"), or the last error. Hidden while all is well.
 *
 * Owns: the status element and its countdown timer. Must never: reconnect by itself; the
 * button calls `onAction(kind)` ("reconnect", "connect"; "dismiss" it handles itself).
 */

export class StatusLine {
  constructor(box, text, button, { onAction }) {
    this.box = box;
    this.text = text;
    this.button = button;
    this.onAction = onAction;
    this.timer = null;
    this.action = null;
    button.addEventListener("click", () => {
      if (this.action === "dismiss") this._show(null);
      else if (this.action) this.onAction(this.action);
    });
  }

  update(status) {
    clearInterval(this.timer);
    this.timer = null;
    const error = status.error ? ` ${status.error}.` : "";
    this.box.dataset.state = status.state;
    switch (status.state) {
      case "registered":
        this._show(status.warning ? `${status.warning}. You are connected without an account.` : null, status.warning ? "dismiss" : null);
        break;
      case "connecting":
      case "registering":
        this._show(`Connecting…${status.attempt ? ` (attempt ${status.attempt + 1})` : ""}`, null, true);
        break;
      case "reconnecting": {
        const tick = () => {
          const seconds = Math.max(0, Math.ceil((status.retryAt - Date.now()) / 1000));
          this._show(`Disconnected.${error} Reconnecting in ${seconds} s…`, "reconnect");
        };
        tick();
        this.timer = setInterval(tick, 1000);
        break;
      }
      case "disconnected":
        this._show(`Disconnected.${error}`, "connect");
        break;
      default:
        this._show(status.state);
    }
  }

  _show(text, action = null, ok = false) {
    this.box.hidden = text === null;
    this.box.classList.toggle("ok", ok);
    if (text === null) return;
    this.text.textContent = text;
    this.action = action;
    this.button.hidden = !action;
    this.button.textContent = { reconnect: "Reconnect now", connect: "Connect", dismiss: "Dismiss" }[action] || "";
  }
}
