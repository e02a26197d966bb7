/* Billing (#17) on the pages: confirmation dialogs for a plan change and a cancellation, and
 * after Checkout waiting for Stripe's confirmation (GET /api/v1/billing, polled for a
 * bounded time) instead of claiming it. Every action itself is a form that works without
 * JavaScript. */
(function () {
  "use strict";

  async function billingStatus() {
    try {
      var response = await fetch("/api/v1/billing", {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      return response.ok ? await response.json() : null;
    } catch (err) {
      return null;
    }
  }

  /* The page after an action announces it by a fixed name (?done=…), as the forms do. */
  function announce(done) {
    window.location.assign("/settings?done=" + done);
  }

  /* Cancel and plan change are plain forms that work without JavaScript (their opener
   * leads to a confirmation page); here the opener shows the same confirmation as a dialog
   * instead, and the dialog's own form posts as without JavaScript. */
  function opens(action, dialogOf) {
    document.querySelectorAll('[data-action="' + action + '"]').forEach(function (button) {
      button.addEventListener("click", function (event) {
        event.preventDefault();
        dialogOf(button).showModal();
      });
    });
  }

  function init() {
    document.querySelectorAll('[data-action="dialog-close"]').forEach(function (button) {
      button.addEventListener("click", function () { button.closest("dialog").close(); });
    });
    opens("change-plan-open", function (button) {
      return document.getElementById("change-dialog-" + button.getAttribute("data-tier"));
    });
    opens("billing-cancel-open", function () { return document.getElementById("cancel-dialog"); });
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
      var status = await billingStatus();
      if (status && status.has_subscription && status.status === "active") {
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
