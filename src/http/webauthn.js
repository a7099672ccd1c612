// identa's webauthn.js: runs the browser side of security-key and passkey ceremonies for
// forms rendered from identa's (Kratos-shaped) UI nodes. Each trigger reads the options
// the flow put in a node, asks the browser's authenticator, writes the answer into the
// node the flow expects, and submits the form. Served at /.well-known/ory/webauthn.js,
// with the same global names as Kratos's script, so Kratos front ends work unchanged.
;(function () {
  "use strict"
  if (window.__identaWebAuthn) {
    return
  }
  window.__identaWebAuthn = true

  function decode(value) {
    var s = value.replace(/-/g, "+").replace(/_/g, "/")
    while (s.length % 4) s += "="
    return Uint8Array.from(atob(s), function (c) {
      return c.charCodeAt(0)
    })
  }

  function encode(buffer) {
    if (!buffer) return null
    var bytes = new Uint8Array(buffer)
    var s = ""
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i])
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
  }

  function named(name) {
    return document.getElementsByName(name)[0]
  }

  function creationOptions(options) {
    var pk = options.publicKey
    pk.challenge = decode(pk.challenge)
    pk.user.id = decode(pk.user.id)
    ;(pk.excludeCredentials || []).forEach(function (c) {
      c.id = decode(c.id)
    })
    return options
  }

  function requestOptions(options) {
    var pk = options.publicKey
    pk.challenge = decode(pk.challenge)
    ;(pk.allowCredentials || []).forEach(function (c) {
      c.id = decode(c.id)
    })
    delete options.mediation
    return options
  }

  function attestation(credential) {
    return JSON.stringify({
      id: credential.id,
      rawId: encode(credential.rawId),
      type: credential.type,
      extensions: {},
      response: {
        attestationObject: encode(credential.response.attestationObject),
        clientDataJSON: encode(credential.response.clientDataJSON),
      },
    })
  }

  function assertion(credential) {
    return JSON.stringify({
      id: credential.id,
      rawId: encode(credential.rawId),
      type: credential.type,
      extensions: {},
      response: {
        authenticatorData: encode(credential.response.authenticatorData),
        clientDataJSON: encode(credential.response.clientDataJSON),
        signature: encode(credential.response.signature),
        userHandle: encode(credential.response.userHandle),
      },
    })
  }

  // Writes the answer and submits the form with the method the flow expects.
  function submit(resultEl, value, method) {
    var form = resultEl.closest("form")
    resultEl.value = value
    var methodEl = form.querySelector("input[type='hidden'][name='method']")
    if (!methodEl) {
      methodEl = document.createElement("input")
      methodEl.type = "hidden"
      methodEl.name = "method"
      form.appendChild(methodEl)
    }
    methodEl.value = method
    form.submit()
  }

  function fail(err) {
    console.error("identa webauthn:", err)
    alert("The security key or passkey did not respond: " + err.message)
  }

  function supported() {
    if (window.PublicKeyCredential) return true
    alert("This browser does not support security keys or passkeys.")
    return false
  }

  function webAuthnRegistration() {
    if (!supported()) return
    var trigger = named("webauthn_register_trigger")
    var options = creationOptions(JSON.parse(trigger.value))
    navigator.credentials
      .create(options)
      .then(function (c) {
        submit(named("webauthn_register"), attestation(c), "webauthn")
      })
      .catch(fail)
  }

  function webAuthnLogin() {
    if (!supported()) return
    var trigger = named("webauthn_login_trigger")
    var options = requestOptions(JSON.parse(trigger.value))
    navigator.credentials
      .get(options)
      .then(function (c) {
        submit(named("webauthn_login"), assertion(c), "webauthn")
      })
      .catch(fail)
  }

  function passkeyCreate(resultName) {
    if (!supported()) return
    var resultEl = named(resultName)
    var data = JSON.parse(named("passkey_create_data").value)
    var options = creationOptions(data.credentialOptions)
    // The name field of the form being submitted (a page may show the traits twice).
    var field = data.displayNameFieldName
    var form = resultEl.closest("form")
    var nameEl =
      field &&
      ((form && form.querySelector("[name='" + CSS.escape(field) + "']")) || named(field))
    if (nameEl && nameEl.value) {
      options.publicKey.user.name = nameEl.value
      options.publicKey.user.displayName = nameEl.value
    }
    navigator.credentials
      .create(options)
      .then(function (c) {
        submit(resultEl, attestation(c), "passkey")
      })
      .catch(fail)
  }

  function passkeyLogin() {
    if (!supported()) return
    var options = requestOptions(JSON.parse(named("passkey_challenge").value))
    navigator.credentials
      .get(options)
      .then(function (c) {
        submit(named("passkey_login"), assertion(c), "passkey")
      })
      .catch(fail)
  }

  window.oryWebAuthnRegistration = webAuthnRegistration
  window.oryWebAuthnLogin = webAuthnLogin
  window.oryPasskeyRegistration = function () {
    passkeyCreate("passkey_register")
  }
  window.oryPasskeySettingsRegistration = function () {
    passkeyCreate("passkey_settings_register")
  }
  window.oryPasskeyLogin = passkeyLogin
  // identa signs in with a passkey by identifier; there is no autofill prompt to start.
  window.oryPasskeyLoginAutocompleteInit = function () {}

  // Pages without a front-end framework: wire buttons that name a trigger.
  document.addEventListener("click", function (event) {
    var el = event.target.closest && event.target.closest("[data-identa-trigger]")
    if (!el) return
    event.preventDefault()
    var fn = window[el.getAttribute("data-identa-trigger")]
    if (typeof fn === "function") fn()
  })
})()
