/* tierkeeper pages: every form posts to the server and works without this script. The
 * script only makes the pages smoother: the time zone at sign-up, the model list and key
 * link per provider, show/hide of the key, testing a key in place, a busy state that keeps
 * focus, and moving focus to the message a re-rendered page shows. */
(function () {
  "use strict";

  function meta(name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute("content") : "";
  }

  async function api(method, path, body) {
    var headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && method !== "HEAD") {
      var token = meta("csrf-token");
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
      return { ok: false, status: 0, data: null };
    }
    var data = null;
    if (response.status !== 204) {
      try { data = await response.json(); } catch (err) { data = null; }
    }
    return { ok: response.ok, status: response.status, data: data };
  }

  /* A re-rendered page's message (an error near the button the customer pressed, or a
   * test result) gets the focus and scrolls into view: on a phone it may be off screen. */
  function focusMessage() {
    if (document.querySelector("[autofocus]")) return;
    var target = document.querySelector("[data-autofocus]") ||
      document.querySelector(".form-error:not([hidden])") ||
      document.querySelector("#test-result:not([hidden])");
    if (!target) return;
    if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
    target.focus();
    target.scrollIntoView({ block: "center" });
  }

  /* A form being sent shows its button busy and is not sent twice. The button stays
   * enabled (a disabled button would drop its name and value from the form, and the focus
   * with it); the next page takes over. */
  function initBusyForms() {
    document.querySelectorAll("form[method='post']").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (event.defaultPrevented) return;
        if (form.getAttribute("data-sending") === "true") { event.preventDefault(); return; }
        form.setAttribute("data-sending", "true");
        var button = event.submitter || form.querySelector("button[type='submit']");
        if (button) button.setAttribute("aria-busy", "true");
      });
    });
    window.addEventListener("pageshow", function () {
      document.querySelectorAll("form[data-sending]").forEach(function (form) {
        form.removeAttribute("data-sending");
        form.querySelectorAll("[aria-busy]").forEach(function (b) { b.removeAttribute("aria-busy"); });
      });
    });
  }

  function initAuth() {
    var tz = document.getElementById("timezone");
    if (!tz) return;
    try { tz.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (err) { tz.value = ""; }
  }

  /* ---- settings: AI Provider ----------------------------------------------------------- */
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
    var keyBox = form.querySelector(".key-entry");
    var keepWords = form.querySelector("#keep-key-words");
    var keyWords = form.querySelector("#api-key-words");
    var keyLink = form.querySelector("#key-link");
    var keyLinkProvider = form.querySelector("#key-link-provider");
    var masked = form.querySelector("#masked-key");
    var replaceButton = form.querySelector('[data-action="replace-key"]');
    var toggle = form.querySelector('[data-action="toggle-key"]');
    var modelSelect = form.querySelector("#model_preference");
    var modelText = form.querySelector("#model_preference_text");
    var modelOptions = form.querySelector("#model-options");
    var modelHint = form.querySelector("#model-hint");
    var resultBox = form.querySelector("#test-result");
    var formError = form.querySelector(".form-error");
    var testButton = form.querySelector('[data-action="test-connection"]');
    var saveButton = form.querySelector('[data-action="save"]');
    var removeButton = form.querySelector('[data-action="remove"]');
    var replacing = keyInput.getAttribute("aria-invalid") === "true";

    function current() { return byId[providerSelect.value]; }
    function modelControl() { return current().accepts_any_model ? modelText : modelSelect; }
    function modelValue() { return modelControl().value.trim(); }
    function keyStoredForProvider() { return stored && storedProvider === providerSelect.value; }
    function keyEntryOpen() { return !keyBox.hidden; }

    function syncKeyField() {
      var needKey = !keyStoredForProvider();
      keyBox.hidden = !(needKey || replacing);
      if (masked) masked.hidden = needKey;
      if (replaceButton) {
        replaceButton.hidden = false;
        replaceButton.textContent = replacing ? "Keep stored key" : "Replace key";
        replaceButton.setAttribute("aria-expanded", replacing ? "true" : "false");
      }
      var provider = current();
      keyWords.textContent = provider.key_words + (stored && needKey ? " Saving replaces your stored key." : "");
      if (keepWords) keepWords.hidden = true;
      keyLink.hidden = !provider.key_url;
      if (provider.key_url) keyLink.href = provider.key_url;
      keyLinkProvider.textContent = provider.name;
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
        modelSelect.hidden = true; modelSelect.disabled = true; modelSelect.removeAttribute("name");
        modelText.hidden = false; modelText.disabled = false; modelText.setAttribute("name", "model_preference");
        modelText.id = "model_preference";
        modelSelect.id = "model_preference_select";
        modelText.value = wanted || (provider.models[0] ? provider.models[0].id : "");
        modelHint.textContent = provider.name + " accepts any vendor/model id, for example " +
          (provider.models[0] ? provider.models[0].id : "vendor/model") + "." +
          (provider.unlisted_note ? " " + provider.unlisted_note : "");
      } else {
        modelText.hidden = true; modelText.disabled = true; modelText.removeAttribute("name");
        modelSelect.hidden = false; modelSelect.disabled = false; modelSelect.setAttribute("name", "model_preference");
        modelText.id = "model_preference_text";
        modelSelect.id = "model_preference";
        if (listed) modelSelect.value = wanted;
        modelHint.textContent = "";
      }
    }

    function clearMessages() {
      form.querySelectorAll(".field-error").forEach(function (el) { el.hidden = true; el.textContent = ""; });
      form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
      if (formError) { formError.hidden = true; formError.textContent = ""; }
    }

    function showResult(kind, text) {
      resultBox.textContent = text;
      resultBox.className = "test-result" + (kind ? " " + (kind === "valid" ? "result-valid" : "result-bad") : "");
      if (kind) resultBox.setAttribute("data-result", kind); else resultBox.removeAttribute("data-result");
      resultBox.hidden = false;
    }

    providerSelect.addEventListener("change", function () {
      clearMessages();
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
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var show = keyInput.type === "password";
      keyInput.type = show ? "text" : "password";
      toggle.textContent = show ? "Hide" : "Show";
      toggle.setAttribute("aria-pressed", show ? "true" : "false");
      toggle.setAttribute("aria-label", show ? "Hide the key" : "Show the key");
    });
    toggle.setAttribute("aria-label", "Show the key");

    /* Saving without a key while the key field is closed keeps the stored key. */
    form.addEventListener("submit", function () {
      if (!keyEntryOpen()) keyInput.value = "";
      if (keyInput.type === "text") keyInput.type = "password";
    });

    /* Test connection in place: the result shows above the buttons; both buttons wait
     * while it runs, and the focus comes back to the one pressed. */
    testButton.addEventListener("click", async function (event) {
      event.preventDefault();
      clearMessages();
      var body = { provider: providerSelect.value, model_preference: modelValue() };
      if (keyEntryOpen()) {
        if (!keyInput.value) {
          var error = form.querySelector("#api_key-error");
          error.textContent = "Enter your " + current().name + " API key to test it. " + current().key_words;
          error.hidden = false;
          keyInput.setAttribute("aria-invalid", "true");
          keyInput.focus();
          return;
        }
        body.api_key = keyInput.value;
      }
      showResult("", "Testing your " + current().name + " key…");
      resultBox.scrollIntoView({ block: "nearest" });
      [testButton, saveButton].forEach(function (b) { b.disabled = true; });
      testButton.setAttribute("aria-busy", "true");
      var result;
      try {
        result = await api("POST", "/api/v1/settings/llm-config/test", body);
      } finally {
        [testButton, saveButton].forEach(function (b) { b.disabled = false; });
        testButton.removeAttribute("aria-busy");
        testButton.focus();
      }
      if (!result.ok) {
        if (result.status === 401) { window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname)); return; }
        var words = current().errors[(result.data && result.data.field) || ""] ||
          current().errors[(result.data && result.data.code) || ""] || current().errors[""];
        showResult("unreachable", words);
        return;
      }
      var data = result.data;
      var words = current().results;
      var text = (words[data.result] || data.result).replace("{ms}", String(data.latency_ms));
      if (data.result === "unreachable") {
        var status = /HTTP (5\d\d)/.exec(data.detail || "");
        if (status) text = words.server_error.replace("{status}", status[1]);
        else if (/did not answer/.test(data.detail || "")) text = words.timeout;
      }
      showResult(data.result, text);
      if (!body.api_key) showStoredStatus(data.result);
    });

    var STORED_STATUS = { valid: ["valid", "Working"], invalid_key: ["invalid", "Rejected by the provider"] };
    function showStoredStatus(result) {
      var status = form.querySelector('[data-testid="key-status"] .status');
      var label = STORED_STATUS[result];
      if (!status || !label) return;
      status.textContent = label[1];
      status.className = "status status-" + label[0];
    }

    if (removeButton) {
      removeButton.addEventListener("click", function (event) {
        if (!window.confirm("Remove your stored API key? Your agent stops using it at once.")) event.preventDefault();
      });
    }

    fillModels(modelText.value || modelSelect.value);
    syncKeyField();
  }

  document.addEventListener("DOMContentLoaded", function () {
    initBusyForms();
    initAuth();
    initProvider();
    focusMessage();
  });
})();
