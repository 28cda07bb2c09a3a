// Security keys (WebAuthn) on the second-factor pages: registration and sign-in ceremonies.
// The server makes the options and checks the answers (access/securitykeys.py); this only moves
// bytes between it and navigator.credentials.
(function () {
  "use strict";

  function toBytes(b64url) {
    var s = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var s = "";
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {})
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (!resp.ok) {
          var err = new Error(data.error || (typeof data.detail === "string" ? data.detail : resp.statusText));
          err.data = data;
          throw err;
        }
        return data;
      });
    });
  }

  function showError(message) {
    var box = document.getElementById("webauthn-error");
    if (box) { box.textContent = message; box.hidden = false; }
  }

  function showCodes(codes, next) {
    var section = document.getElementById("webauthn-done");
    var main = document.querySelector("main") || document.body;
    var list = document.createElement("ul");
    list.id = "recovery-codes";
    list.className = "codes";
    codes.forEach(function (c) {
      var li = document.createElement("li");
      var code = document.createElement("code");
      code.textContent = c;
      li.appendChild(code);
      list.appendChild(li);
    });
    var link = document.createElement("a");
    link.id = "continue";
    link.className = "button";
    link.href = next;
    link.textContent = section.dataset.continueLabel;
    section.hidden = false;
    section.appendChild(list);
    section.appendChild(link);
    main.querySelectorAll("section.ceremony").forEach(function (s) { s.hidden = true; });
  }

  function register(button) {
    var csrf = button.dataset.csrf, next = button.dataset.next || "/";
    var nameField = document.getElementById("key-name");
    post("/mfa/webauthn/register/options", csrf).then(function (opts) {
      opts.challenge = toBytes(opts.challenge);
      opts.user.id = toBytes(opts.user.id);
      (opts.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
      return navigator.credentials.create({ publicKey: opts });
    }).then(function (cred) {
      var r = cred.response;
      return post("/mfa/webauthn/register", csrf, {
        name: nameField ? nameField.value : "", next: next,
        credential: {
          id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
          response: {
            clientDataJSON: toB64url(r.clientDataJSON), attestationObject: toB64url(r.attestationObject),
            transports: r.getTransports ? r.getTransports() : []
          },
          clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
        }
      });
    }).then(function (data) {
      if (data.codes && data.codes.length) { showCodes(data.codes, data.next); }
      else { window.location.assign(data.next); }
    }).catch(function (err) { showError(err.message); });
  }

  function signIn(button) {
    var csrf = button.dataset.csrf, next = button.dataset.next || "/";
    post("/mfa/webauthn/options", csrf).then(function (opts) {
      opts.challenge = toBytes(opts.challenge);
      (opts.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
      return navigator.credentials.get({ publicKey: opts });
    }).then(function (cred) {
      var r = cred.response;
      return post("/mfa/webauthn", csrf, {
        next: next,
        credential: {
          id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
          response: {
            clientDataJSON: toB64url(r.clientDataJSON), authenticatorData: toB64url(r.authenticatorData),
            signature: toB64url(r.signature), userHandle: r.userHandle ? toB64url(r.userHandle) : null
          },
          clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
        }
      });
    }).then(function (data) {
      window.location.assign(data.next);
    }).catch(function (err) {
      if (err.data && err.data.ended) { window.location.assign("/login"); return; }
      showError(err.message);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var reg = document.getElementById("webauthn-register");
    var sign = document.getElementById("webauthn-signin");
    if ((reg || sign) && !window.PublicKeyCredential) {
      showError((reg || sign).dataset.unsupported);
      return;
    }
    if (reg) { reg.addEventListener("click", function () { register(reg); }); }
    if (sign) { sign.addEventListener("click", function () { signIn(sign); }); }
  });
})();
