/* tierkeeper pages: the few actions the server-rendered pages need, through the JSON API.
 * Requests carry the session cookie (same origin) and, when unsafe, the CSRF token the page
 * was rendered with (meta csrf-token; else the cookie named by meta csrf-cookie). Errors from
 * the API have the body {code, detail, field}: a field error is shown next to its field. */
(function () {
  "use strict";

  function meta(name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute("content") : "";
  }

  function cookie(name) {
    if (!name) return "";
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) return decodeURIComponent(parts[i].slice(eq + 1));
    }
    return "";
  }

  function csrfToken() {
    return meta("csrf-token") || cookie(meta("csrf-cookie"));
  }

  async function api(method, path, body) {
    var headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && method !== "HEAD") {
      var token = csrfToken();
      if (token) headers[meta("csrf-header") || "x-csrf-token"] = token;
    }
    var response;
    try {
      response = await fetch(path, {
        method: method,
        headers: headers,
        credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      return { ok: false, status: 0, data: { detail: "The server could not be reached. Check your connection and try again." } };
    }
    var data = null;
    if (response.status !== 204) {
      try { data = await response.json(); } catch (err) { data = null; }
    }
    return { ok: response.ok, status: response.status, data: data };
  }

  function flash(message) {
    try { sessionStorage.setItem("tierkeeper-flash", message); } catch (err) { /* private mode */ }
  }

  function showFlash() {
    var message = null;
    try {
      message = sessionStorage.getItem("tierkeeper-flash");
      sessionStorage.removeItem("tierkeeper-flash");
    } catch (err) { message = null; }
    var box = document.getElementById("flash");
    if (message && box) {
      box.textContent = message;
      box.hidden = false;
    }
  }

  function clearErrors(form) {
    form.querySelectorAll(".field-error").forEach(function (el) { el.hidden = true; el.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    var formError = form.querySelector(".form-error");
    if (formError) { formError.hidden = true; formError.textContent = ""; }
  }

  function showFieldError(form, field, message, input) {
    var box = form.querySelector("#" + CSS.escape(field) + "-error");
    if (!box) return false;
    box.textContent = message;
    box.hidden = false;
    var control = input || form.querySelector("#" + CSS.escape(field));
    if (control) {
      control.setAttribute("aria-invalid", "true");
      if (!control.hidden) control.focus();
    }
    return true;
  }

  function showFormError(box, message) {
    if (!box) { window.alert(message); return; }
    box.textContent = message;
    box.hidden = false;
    box.focus && box.focus();
  }

  function handleError(result, form, box, controls) {
    if (result.status === 401) {
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
      return;
    }
    var body = result.data || {};
    var detail = body.detail || "Something went wrong (HTTP " + result.status + "). Please try again.";
    if (body.field && form) {
      var control = controls && controls[body.field];
      if (showFieldError(form, body.field, detail, control)) return;
    }
    showFormError(box, detail);
  }

  async function busy(button, work) {
    if (button) { button.disabled = true; button.setAttribute("aria-busy", "true"); }
    try { return await work(); } finally {
      if (button) { button.disabled = false; button.removeAttribute("aria-busy"); }
    }
  }

  function safeNext(value, fallback) {
    /* Only a path of this site: "//host" and "/\\host" would leave it. */
    return value && /^\/(?![\/\\])/.test(value) ? value : fallback;
  }

  /* ---- sign up / log in ---------------------------------------------------------------- */
  function initAuth() {
    var form = document.getElementById("auth-form");
    if (!form) return;
    var mode = form.getAttribute("data-mode");
    var tz = document.getElementById("timezone");
    if (tz) {
      try { tz.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (err) { tz.value = ""; }
    }
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      clearErrors(form);
      var email = form.querySelector("#email");
      var password = form.querySelector("#password");
      if (!email.value.trim()) { showFieldError(form, "email", "Enter your email address."); return; }
      if (!password.value) { showFieldError(form, "password", "Enter your password."); return; }
      var body = { email: email.value.trim(), password: password.value };
      if (mode === "signup" && tz && tz.value) body.timezone = tz.value;
      var button = form.querySelector('button[type="submit"]');
      var result = await busy(button, function () {
        return api("POST", "/api/v1/auth/" + (mode === "signup" ? "signup" : "login"), body);
      });
      if (!result.ok) {
        if (result.status === 401) {
          showFormError(form.querySelector(".form-error"), (result.data && result.data.detail) || "Wrong email or password.");
          return;
        }
        handleError(result, form, form.querySelector(".form-error"));
        return;
      }
      var next = new URLSearchParams(window.location.search).get("next");
      window.location.assign(mode === "signup" ? "/onboarding" : safeNext(next, "/"));
    });
  }

  /* ---- log out ------------------------------------------------------------------------- */
  function initLogout() {
    document.querySelectorAll('[data-action="logout"]').forEach(function (button) {
      button.addEventListener("click", async function () {
        await busy(button, function () { return api("POST", "/api/v1/auth/logout"); });
        window.location.assign("/login");
      });
    });
  }

  /* ---- onboarding: choose a tier, go to Stripe Checkout ------------------------------- */
  function initOnboarding() {
    var box = document.getElementById("checkout-error");
    document.querySelectorAll('[data-action="choose-tier"]').forEach(function (button) {
      button.addEventListener("click", async function () {
        if (box) { box.hidden = true; box.textContent = ""; }
        var tier = button.getAttribute("data-tier");
        var result = await busy(button, function () { return api("POST", "/api/v1/billing/checkout", { tier: tier }); });
        if (result.ok && result.data && result.data.checkout_url) {
          window.location.assign(result.data.checkout_url);
          return;
        }
        handleError(result, null, box);
      });
    });
  }

  /* ---- settings: Plan & usage (a tier with a model choice) --------------------------- */
  function initModelChoice() {
    var form = document.getElementById("model-form");
    if (!form) return;
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      clearErrors(form);
      var select = form.querySelector("#model_preference");
      var button = form.querySelector('button[type="submit"]');
      var result = await busy(button, function () {
        return api("PATCH", "/api/v1/tenant", { model_preference: select.value });
      });
      if (!result.ok) { handleError(result, form, form.querySelector(".form-error")); return; }
      flash("Your agent now answers with " + select.options[select.selectedIndex].text + ".");
      window.location.reload();
    });
  }

  /* ---- settings: AI Provider ----------------------------------------------------------- */
  var RESULT_TEXT = {
    valid: "Connection works",
    invalid_key: "The provider rejected this key",
    rate_limited: "The provider is rate limiting this key; try again shortly",
    unreachable: "Could not reach the provider",
  };

  var STORED_STATUS = {
    valid: ["valid", "Working"],
    invalid_key: ["invalid", "Rejected by the provider"],
  };

  function initProvider() {
    var form = document.getElementById("provider-form");
    if (!form) return;
    var providers = JSON.parse(document.getElementById("provider-data").textContent);
    var byId = {};
    providers.forEach(function (p) { byId[p.id] = p; });
    var stored = form.getAttribute("data-stored") === "true";
    var storedProvider = form.getAttribute("data-stored-provider");
    var providerSelect = form.querySelector("#provider");
    var keyInput = form.querySelector("#api_key");
    var keyHint = form.querySelector("#api-key-hint");
    var masked = form.querySelector("#masked-key");
    var replaceButton = form.querySelector('[data-action="replace-key"]');
    var modelSelect = form.querySelector("#model_preference");
    var modelText = form.querySelector("#model_preference_text");
    var modelOptions = form.querySelector("#model-options");
    var modelHint = form.querySelector("#model-hint");
    var fallback = form.querySelector("#allow_platform_fallback");
    var resultBox = form.querySelector("#test-result");
    var formError = form.querySelector(".form-error");
    var replacing = false;

    function current() { return byId[providerSelect.value]; }
    function freeText() { return current().accepts_any_model; }
    function modelControl() { return freeText() ? modelText : modelSelect; }
    function modelValue() { return modelControl().value.trim(); }
    function keyStoredForProvider() { return stored && storedProvider === providerSelect.value; }
    function keyEntryOpen() { return !keyInput.hidden; }

    function syncKeyField() {
      var needKey = !keyStoredForProvider();
      var open = needKey || replacing;
      keyInput.hidden = !open;
      if (masked) masked.hidden = needKey;
      if (replaceButton) {
        replaceButton.textContent = replacing ? "Keep stored key" : "Replace key";
        replaceButton.setAttribute("aria-expanded", replacing ? "true" : "false");
      }
      var hint = current().key_hint;
      if (stored && needKey) hint += ". Saving replaces your stored key.";
      keyHint.textContent = hint;
    }

    function fillModels(keepValue) {
      var provider = current();
      var wanted = keepValue !== undefined ? keepValue : modelValue();
      modelSelect.innerHTML = "";
      modelOptions.innerHTML = "";
      provider.models.forEach(function (m) {
        var option = document.createElement("option");
        option.value = m.id;
        option.textContent = m.label;
        modelSelect.appendChild(option);
        var suggestion = document.createElement("option");
        suggestion.value = m.id;
        suggestion.textContent = m.label;
        modelOptions.appendChild(suggestion);
      });
      var listed = provider.models.some(function (m) { return m.id === wanted; });
      if (provider.accepts_any_model) {
        modelSelect.hidden = true; modelSelect.disabled = true;
        modelText.hidden = false; modelText.disabled = false;
        modelText.id = "model_preference";
        modelSelect.id = "model_preference_select";
        modelText.value = wanted || (provider.models[0] ? provider.models[0].id : "");
        modelHint.textContent = provider.name + " accepts any vendor/model id, for example " +
          (provider.models[0] ? provider.models[0].id : "vendor/model") + "." +
          (provider.unlisted_note ? " " + provider.unlisted_note : "");
      } else {
        modelText.hidden = true; modelText.disabled = true;
        modelSelect.hidden = false; modelSelect.disabled = false;
        modelText.id = "model_preference_text";
        modelSelect.id = "model_preference";
        if (listed) modelSelect.value = wanted;
        modelHint.textContent = "";
      }
    }

    providerSelect.addEventListener("change", function () {
      clearErrors(form);
      resultBox.hidden = true;
      fillModels("");
      syncKeyField();
    });
    if (replaceButton) {
      replaceButton.addEventListener("click", function () {
        replacing = !replacing;
        keyInput.value = "";
        syncKeyField();
        if (replacing) keyInput.focus();
      });
    }

    function controls() { return { model_preference: modelControl(), api_key: keyInput, provider: providerSelect }; }

    form.querySelector('[data-action="test-connection"]').addEventListener("click", async function (event) {
      var button = event.currentTarget;
      clearErrors(form);
      resultBox.hidden = true;
      var body = { provider: providerSelect.value, model_preference: modelValue() };
      if (keyEntryOpen()) {
        if (!keyInput.value) {
          showFieldError(form, "api_key", "Enter an API key to test it.", keyInput);
          return;
        }
        body.api_key = keyInput.value;
      }
      resultBox.textContent = "Testing…";
      resultBox.className = "test-result";
      resultBox.hidden = false;
      var result = await busy(button, function () { return api("POST", "/api/v1/settings/llm-config/test", body); });
      if (!result.ok) {
        resultBox.hidden = true;
        handleError(result, form, formError, controls());
        return;
      }
      var data = result.data;
      var text = (RESULT_TEXT[data.result] || data.result) + " (" + data.latency_ms + " ms)";
      if (data.detail && data.result !== "valid") text += ": " + data.detail;
      resultBox.textContent = text;
      resultBox.setAttribute("data-result", data.result);
      resultBox.className = "test-result " + (data.result === "valid" ? "result-valid" : "result-bad");
      if (!body.api_key) showStoredStatus(data.result);
    });

    /* Testing the stored key updates its status on the server: show the new one. */
    function showStoredStatus(result) {
      var status = form.querySelector('[data-testid="key-status"] .status');
      var label = STORED_STATUS[result];
      if (!status || !label) return;
      status.textContent = label[1];
      status.className = "status status-" + label[0];
    }

    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      clearErrors(form);
      var body = {
        provider: providerSelect.value,
        model_preference: modelValue(),
        allow_platform_fallback: fallback.checked,
      };
      if (keyEntryOpen()) {
        if (!keyInput.value) {
          showFieldError(form, "api_key", "Enter your " + current().name + " API key.", keyInput);
          return;
        }
        body.api_key = keyInput.value;
      }
      var button = form.querySelector('[data-action="save"]');
      var result = await busy(button, function () { return api("PUT", "/api/v1/settings/llm-config/", body); });
      if (!result.ok) { handleError(result, form, formError, controls()); return; }
      keyInput.value = "";
      flash("Saved. Your agent uses " + body.model_preference + " on your " + current().name + " key.");
      window.location.reload();
    });

    var removeButton = form.querySelector('[data-action="remove"]');
    if (removeButton) {
      removeButton.addEventListener("click", async function () {
        clearErrors(form);
        if (!window.confirm("Remove your stored API key? Your agent stops using it at once.")) return;
        var result = await busy(removeButton, function () { return api("DELETE", "/api/v1/settings/llm-config/"); });
        if (!result.ok && result.status !== 404) { handleError(result, form, formError); return; }
        flash("Your API key was removed.");
        window.location.reload();
      });
    }

    fillModels(modelText.value);
    syncKeyField();
  }

  document.addEventListener("DOMContentLoaded", function () {
    showFlash();
    initAuth();
    initLogout();
    initOnboarding();
    initModelChoice();
    initProvider();
  });
})();
