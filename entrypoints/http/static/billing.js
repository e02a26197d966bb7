/* Billing (#17) on the pages: change the plan of the one subscription, cancel at the period
 * end and resume, open Stripe's billing portal, and after Checkout wait for Stripe's
 * confirmation (GET /api/v1/billing, polled for a bounded time) instead of claiming it.
 * Unsafe requests carry the CSRF token the page was rendered with, as app.js does. */
(function () {
  "use strict";

  function meta(name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute("content") : "";
  }

  async function api(method, path, body) {
    var headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers[meta("csrf-header") || "x-csrf-token"] = meta("csrf-token");
    try {
      var response = await fetch(path, {
        method: method, headers: headers, credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      var data = null;
      try { data = await response.json(); } catch (err) { data = null; }
      return { ok: response.ok, status: response.status, data: data };
    } catch (err) {
      return { ok: false, status: 0, data: { detail: "The server could not be reached. Check your connection and try again." } };
    }
  }

  function showError(box, result) {
    if (!box) return;
    box.textContent = (result.data && result.data.detail) || "Something went wrong; please try again.";
    box.hidden = false;
  }

  /* The page after an action announces it by a fixed name (?done=…), as the forms do. */
  function announce(done) {
    window.location.assign("/settings?done=" + done);
  }

  async function run(button, work) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try { return await work(); } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  function on(action, handler) {
    document.querySelectorAll('[data-action="' + action + '"]').forEach(function (button) {
      button.addEventListener("click", function () { handler(button); });
    });
  }

  function init() {
    on("dialog-close", function (button) { button.closest("dialog").close(); });

    on("change-plan-open", function (button) {
      document.getElementById("change-dialog-" + button.getAttribute("data-tier")).showModal();
    });
    on("change-plan", async function (button) {
      var dialog = button.closest("dialog");
      var box = dialog.querySelector(".form-error");
      box.hidden = true;
      var result = await run(button, function () {
        return api("POST", "/api/v1/billing/change-plan", { tier: button.getAttribute("data-tier") });
      });
      if (!result.ok) { showError(box, result); return; }
      announce(result.data.pending_tier ? "plan-scheduled" : "plan-changed");
    });

    on("billing-cancel-open", function () { document.getElementById("cancel-dialog").showModal(); });
    on("billing-cancel", async function (button) {
      var result = await run(button, function () { return api("POST", "/api/v1/billing/cancel"); });
      if (!result.ok) { button.closest("dialog").close(); showError(document.getElementById("billing-error"), result); return; }
      announce("canceled");
    });
    on("billing-resume", async function (button) {
      var result = await run(button, function () { return api("POST", "/api/v1/billing/resume"); });
      if (!result.ok) { showError(document.getElementById("billing-error"), result); return; }
      announce("resumed");
    });
    on("billing-portal", async function (button) {
      var result = await run(button, function () { return api("POST", "/api/v1/billing/portal"); });
      if (!result.ok) { showError(document.getElementById("billing-error"), result); return; }
      window.location.assign(result.data.url);
    });

    waitForConfirmation();
  }

  /* After Checkout: poll until Stripe's webhook has made the subscription active, then show
   * the page as it now is; past the bound, say plainly that it is still being confirmed. */
  function waitForConfirmation() {
    var box = document.querySelector('[data-testid="checkout-return"][data-state="confirming"]');
    if (!box) return;
    var message = box.querySelector('[data-role="message"]');
    var deadline = Date.now() + 1000 * Number(box.getAttribute("data-wait-seconds") || "60");
    var pollMs = 1500;
    async function poll() {
      var result = await api("GET", "/api/v1/billing");
      if (result.ok && result.data && result.data.has_subscription && result.data.status === "active") {
        announce("paid");
        return;
      }
      if (Date.now() >= deadline) {
        box.setAttribute("data-state", "still-confirming");
        message.textContent = "Still confirming: Stripe has not told us about your payment yet. " +
          "Nothing more is needed from you; refresh this page in a few minutes. " +
          "If the payment failed, Stripe emails you.";
        return;
      }
      window.setTimeout(poll, pollMs);
    }
    window.setTimeout(poll, pollMs);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
