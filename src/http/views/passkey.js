(function () {
  "use strict";
  // Latchkey's passkey ceremonies (WebAuthn). Every form marked data-passkey carries the
  // options the server made (data-options, JSON with binary values in base64url) and a
  // hidden "credential" field; the browser's answer goes back in it with the form.
  var forms = document.querySelectorAll("form[data-passkey]");
  if (!forms.length || !window.PublicKeyCredential || !navigator.credentials) {
    return;
  }
  function toBytes(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  function toText(buf) {
    if (!buf) { return null; }
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function ids(list) {
    (list || []).forEach(function (c) { c.id = toBytes(c.id); });
  }
  function creationOptions(form) {
    var p = JSON.parse(form.getAttribute("data-options")).publicKey;
    p.challenge = toBytes(p.challenge);
    p.user.id = toBytes(p.user.id);
    ids(p.excludeCredentials);
    return p;
  }
  function requestOptions(form) {
    var p = JSON.parse(form.getAttribute("data-options")).publicKey;
    p.challenge = toBytes(p.challenge);
    ids(p.allowCredentials);
    return p;
  }
  function registered(c) {
    var r = c.response;
    return {
      id: c.id, rawId: toText(c.rawId), type: c.type,
      response: {
        attestationObject: toText(r.attestationObject),
        clientDataJSON: toText(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : []
      },
      extensions: c.getClientExtensionResults()
    };
  }
  function asserted(c) {
    var r = c.response;
    return {
      id: c.id, rawId: toText(c.rawId), type: c.type,
      response: {
        authenticatorData: toText(r.authenticatorData),
        clientDataJSON: toText(r.clientDataJSON),
        signature: toText(r.signature),
        userHandle: toText(r.userHandle)
      },
      extensions: c.getClientExtensionResults()
    };
  }
  function send(form, answer) {
    var keep = form.elements.remember, box = document.querySelector("input[type=checkbox][name=remember]");
    if (keep && keep.type === "hidden" && box) { keep.value = box.checked ? "on" : ""; }
    form.elements.credential.value = JSON.stringify(answer);
    form.submit();
  }
  function failed(form, err) {
    var note = form.querySelector("[data-passkey-status]");
    if (!note) { return; }
    note.textContent = err && err.name === "NotAllowedError"
      ? "No passkey was used. You can try again."
      : err && err.name === "InvalidStateError"
        ? "This passkey is registered already."
        : "Your browser could not use a passkey here.";
    note.hidden = false;
  }
  Array.prototype.forEach.call(forms, function (form) {
    var kind = form.getAttribute("data-passkey");
    var waiting = null;
    var section = form.closest("[data-passkey-section]");
    if (section) { section.hidden = false; }
    form.addEventListener("submit", function (e) {
      if (form.elements.credential.value) { return; }
      e.preventDefault();
      if (waiting) { waiting.abort(); waiting = null; }
      var asked = kind === "register"
        ? navigator.credentials.create({ publicKey: creationOptions(form) }).then(registered)
        : navigator.credentials.get({ publicKey: requestOptions(form) }).then(asserted);
      asked.then(function (answer) { send(form, answer); }, function (err) { failed(form, err); });
    });
    if (kind === "sign-in" && PublicKeyCredential.isConditionalMediationAvailable) {
      // The browser's passkey autofill on the name field (autocomplete="username webauthn").
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (!available) { return; }
        waiting = new AbortController();
        navigator.credentials.get({
          publicKey: requestOptions(form), mediation: "conditional", signal: waiting.signal
        }).then(function (c) { send(form, asserted(c)); }, function () {});
      });
    }
  });
})();
