/* Minga outbox: harvests listed without signal wait on the phone and are sent later.
   Progressive enhancement: without this script the form posts as usual. With it, the new-
   harvest form writes the listing into IndexedDB (with a fresh Idempotency-Key and the photo
   as a Blob) and then tries to send it to POST /api/v1/listings. Sending happens on page
   load, on the `online` event and from the "send now" button (no Background Sync: Firefox,
   Safari and WebView lack it). The same key sent twice is stored once by the server.
   Words come from the page (#outbox-i18n, translated by Flask-Babel). */
(function () {
  "use strict";
  var doc = document, body = doc.body;

  // The service worker after the page has loaded: on 2G the page comes first.
  function registerWorker() {
    navigator.serviceWorker.register(body.dataset.sw).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (reg) {
      if (body.dataset.outboxUser && reg.active) { reg.active.postMessage("cache-pages"); }
    }).catch(function () {});
  }
  if ("serviceWorker" in navigator && body.dataset.sw) {
    if (doc.readyState === "complete") { registerWorker(); }
    else { window.addEventListener("load", registerWorker); }
  }

  // A page the service worker served from the phone without signal: say how old it is.
  function showStamp() {
    var stamp = doc.getElementById("offline-stamp");
    if (stamp) { stamp.hidden = body.dataset.offlineCopy === undefined; }
  }
  showStamp();

  // The phone's outbox database, shared with static/plotcapture.js (window.mingaOutbox): a
  // store per kind of capture ("listings", "plots"), each record keyed by its idempotency
  // key and marked with the user who made it.
  function outboxStore(name, owner) {
    function open() {
      return new Promise(function (resolve, reject) {
        // Version 2: the plots' captures from the field beside the harvests.
        var req = indexedDB.open("minga-outbox", 2);
        req.onupgradeneeded = function () {
          ["listings", "plots"].forEach(function (store) {
            if (!req.result.objectStoreNames.contains(store)) {
              req.result.createObjectStore(store, {keyPath: "key"});
            }
          });
        };
        req.onsuccess = function () { resolve(req.result); };
        req.onerror = function () { reject(req.error); };
      });
    }
    function run(mode, work) {
      return open().then(function (db) {
        return new Promise(function (resolve, reject) {
          var tx = db.transaction(name, mode), req = work(tx.objectStore(name));
          tx.oncomplete = function () { db.close(); resolve(req && req.result); };
          tx.onerror = tx.onabort = function () { db.close(); reject(tx.error); };
        });
      });
    }
    return {
      mine: function () {
        return run("readonly", function (s) { return s.getAll(); }).then(function (all) {
          return (all || []).filter(function (r) { return r.user === owner; })
            .sort(function (a, b) { return a.created - b.created; });
        });
      },
      get: function (key) { return run("readonly", function (s) { return s.get(key); }); },
      put: function (rec) { return run("readwrite", function (s) { return s.put(rec); }); },
      drop: function (key) { return run("readwrite", function (s) { return s.delete(key); }); }
    };
  }

  // A fresh idempotency key ("<prefix>-<uuid>", the bare uuid without a prefix).
  function newOutboxKey(prefix) {
    var c = window.crypto;
    if (c && c.randomUUID) { return prefix ? prefix + "-" + c.randomUUID() : c.randomUUID(); }
    var bytes = new Uint8Array(16), out = "";
    if (c && c.getRandomValues) { c.getRandomValues(bytes); }
    else { for (var i = 0; i < 16; i++) { bytes[i] = Math.floor(Math.random() * 256); } }
    for (var j = 0; j < 16; j++) { out += (bytes[j] + 256).toString(16).slice(1); }
    return (prefix || "outbox") + "-" + out + "-" + Date.now().toString(36);
  }
  if (window.indexedDB && window.Promise) {
    window.mingaOutbox = {store: outboxStore, newKey: newOutboxKey};
  }

  var user = body.dataset.outboxUser;
  var i18n = doc.getElementById("outbox-i18n");
  if (!user || !i18n || !window.indexedDB || !window.fetch || !window.FormData) { return; }
  user = Number(user);
  var T = JSON.parse(i18n.textContent);
  var STORE = "listings";
  var sending = null;

  var box = outboxStore(STORE, user);
  var mine = box.mine, get = box.get, put = box.put, drop = box.drop;
  function newKey() { return window.mingaOutbox.newKey(""); }

  function el(tag, text, cls) {
    var node = doc.createElement(tag);
    if (text) { node.textContent = text; }
    if (cls) { node.className = cls; }
    return node;
  }

  function note(text) {
    var p = doc.getElementById("outbox-note");
    if (p && text) { p.textContent = text; p.hidden = false; }
  }

  /* ------------------------------------------------------------------ sending */

  function asForm(rec) {
    var data = new FormData(), f = rec.fields;
    Object.keys(f).forEach(function (name) {
      // The plots chosen, one field each (an empty one: none chosen, so no default applies).
      if (Array.isArray(f[name])) {
        (f[name].length ? f[name] : [""]).forEach(function (v) { data.append(name, v); });
      } else if (f[name]) { data.append(name, f[name]); }
    });
    if (rec.photo) { data.append("photo", rec.photo, rec.photoName || "photo.jpg"); }
    return data;
  }

  function session() {
    return fetch(body.dataset.outboxSession, {credentials: "same-origin", cache: "no-store",
                                              headers: {"Accept": "application/json"}})
      .then(function (r) {
        if (r.status === 401 || r.status === 403) { note(T.login); return null; }
        return r.ok ? r.json() : null;
      }).then(function (s) { return s && s.user_id === user ? s.csrf_token : null; });
  }

  function sendAll() {
    // One run at a time; a call during a run goes after it (a harvest just saved is sent too).
    if (sending) { return sending.then(sendAll); }
    var sent = 0;
    sending = mine().then(function (all) {
      var queue = all.filter(function (r) { return r.status !== "refused"; });
      if (!queue.length) { return; }
      if (navigator.onLine === false) { note(T.offline); return; }
      render(all, true);
      return session().then(function (token) {
        if (!token) { return; }
        return queue.reduce(function (chain, rec) {
          return chain.then(function (go) { return go && sendOne(rec, token); });
        }, Promise.resolve(true));
      });
    }).catch(function () { note(T.failed); }).then(function () {
      return sent ? refresh() : null;
    }).then(function () {
      sending = null;
      if (sent > 1) { note(T.sent_many.replace("{n}", sent)); }
      else if (sent === 1) { note(T.sent); }
      return render();
    });
    return sending;

    function sendOne(rec, token) {
      return fetch(body.dataset.outboxApi, {
        method: "POST", credentials: "same-origin", body: asForm(rec),
        headers: {"Idempotency-Key": rec.key, "X-CSRFToken": token, "Accept": "application/json"}
      }).then(function (r) {
        if (r.status === 201) { sent++; return drop(rec.key).then(function () { return true; }); }
        if (r.status === 401) { note(T.login); return false; }
        if (r.status === 429 || r.status >= 500) { note(T.failed); return false; }
        // Refused (unreadable, not allowed, too large, invalid): the farmer corrects it.
        return r.json().catch(function () { return {}; }).then(function (answer) {
          var err = answer.error || {};
          rec.status = "refused";
          rec.message = err.message || (T.refused + " " + r.status);
          rec.errors = err.fields || {};
          return put(rec).then(function () { return true; });
        });
      }, function () { note(navigator.onLine === false ? T.offline : T.failed); return false; });
    }
  }

  /* ------------------------------------------------------------------ showing */

  // After harvests are sent: the page's own content again from the server, without a reload
  // (the harvest shows in the list, the "no signal" note and the old copy's date go away).
  // Not on the form, whose input the farmer may be typing.
  function refresh() {
    var main = doc.getElementById("main");
    if (!main || form) { return Promise.resolve(); }
    return fetch(location.pathname + location.search, {
      credentials: "same-origin", cache: "no-store", headers: {"Accept": "text/html"}
    }).then(function (r) {
      if (!r.ok || r.redirected) { return; }
      return r.text().then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        if (!fresh) { return; }
        main.replaceChildren.apply(main, Array.prototype.slice.call(fresh.childNodes));
        delete body.dataset.offlineCopy;
        showStamp();
        var again = doc.getElementById("outbox-send");
        if (again) { again.addEventListener("click", function () { sendAll(); }); }
      });
    }).catch(function () {});
  }

  function count(all) {
    var refused = all.filter(function (r) { return r.status === "refused"; }).length;
    var waiting = all.length - refused, parts = [];
    if (waiting) { parts.push(waiting === 1 ? T.waiting_one : T.waiting_many.replace("{n}", waiting)); }
    if (refused) { parts.push(T.refused_count.replace("{n}", refused)); }
    return parts.join(" · ");
  }

  function render(all, busy) {
    var ready = all ? Promise.resolve(all) : mine();
    return ready.then(function (recs) {
      var badge = doc.getElementById("outbox-badge");
      if (badge) { badge.textContent = count(recs); badge.hidden = !recs.length; }
      var section = doc.getElementById("outbox"), list = doc.getElementById("outbox-list");
      if (!section || !list) { return; }
      section.hidden = !recs.length;
      list.textContent = "";
      recs.forEach(function (rec) { list.appendChild(item(rec, busy)); });
    }).catch(function () {});
  }

  function item(rec, busy) {
    var li = el("li"), f = rec.fields;
    li.appendChild(el("strong", rec.label || (f.crop + " " + f.grade)));
    li.appendChild(doc.createTextNode(" — " + f.quantity_kg + " " + T.kg + " · " + f.harvested_on));
    li.appendChild(el("br"));
    if (rec.status === "refused") {
      li.appendChild(el("span", T.refused, "status status-refused"));
      li.appendChild(el("p", rec.message, "err"));
      var fix = el("a", T.edit);
      fix.href = body.dataset.outboxNew + "?outbox=" + encodeURIComponent(rec.key);
      li.appendChild(fix);
      li.appendChild(doc.createTextNode(" "));
      li.appendChild(button(T.resend, function () {
        rec.status = "pending";
        return put(rec).then(sendAll);
      }));
    } else {
      li.appendChild(el("span", busy ? T.sending : T.pending, "status status-pending"));
    }
    li.appendChild(doc.createTextNode(" "));
    li.appendChild(button(T.delete, function () {
      return window.confirm(T.confirm_delete) ? drop(rec.key).then(function () { return render(); }) : null;
    }));
    return li;
  }

  function button(text, action) {
    var b = el("button", text, "link");
    b.type = "button";
    b.addEventListener("click", action);
    return b;
  }

  /* ------------------------------------------------------------------ the form */

  function shrink(file) {
    // A phone photo can be 5 MB: make it at most 1600 px before it waits for 2G (the server
    // makes it smaller still). Anything odd: keep the file as it was.
    if (!file || file.size < 300 * 1024 || !window.createImageBitmap) { return Promise.resolve(file); }
    return createImageBitmap(file).then(function (bmp) {
      var scale = Math.min(1, 1600 / Math.max(bmp.width, bmp.height));
      var canvas = el("canvas");
      canvas.width = Math.round(bmp.width * scale);
      canvas.height = Math.round(bmp.height * scale);
      canvas.getContext("2d").drawImage(bmp, 0, 0, canvas.width, canvas.height);
      return new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", 0.82); });
    }).then(function (blob) { return blob && blob.size < file.size ? blob : file; },
            function () { return file; });
  }

  function sendNow(rec) {
    // One harvest straight to Minga: {kind: "sent"}, {kind: "refused", error} (Minga read it
    // and said no: the farmer corrects it on the form) or {kind: "later"} (no signal, logged
    // out, Minga busy or failing: it waits on the phone).
    return session().then(function (token) {
      if (!token) { return {kind: "later"}; }
      return fetch(body.dataset.outboxApi, {
        method: "POST", credentials: "same-origin", body: asForm(rec),
        headers: {"Idempotency-Key": rec.key, "X-CSRFToken": token, "Accept": "application/json"}
      }).then(function (r) {
        if (r.status === 201) { return {kind: "sent"}; }
        if (r.status === 401 || r.status === 429 || r.status >= 500) { return {kind: "later"}; }
        return r.json().catch(function () { return {}; }).then(function (answer) {
          var err = answer.error || {};
          return {kind: "refused", error: {message: err.message || (T.refused + " " + r.status),
                                           fields: err.fields || {}}};
        });
      });
    }).catch(function () { return {kind: "later"}; });
  }

  function showRefusal(form, error) {
    form.querySelectorAll(".outbox-err").forEach(function (n) { n.remove(); });
    form.querySelectorAll("[aria-invalid]").forEach(function (n) {
      n.removeAttribute("aria-invalid"); n.removeAttribute("aria-describedby");
    });
    var banner = doc.getElementById("outbox-refused");
    if (!banner) {
      banner = el("p", "", "flash error");
      banner.id = "outbox-refused";
      banner.setAttribute("role", "alert");
      form.parentNode.insertBefore(banner, form);
    }
    banner.textContent = error.message;
    fieldErrors(form, error.fields);
    var first = form.querySelector("[aria-invalid=true]");
    if (first) { first.focus(); }
  }

  function fieldErrors(form, errors) {
    Object.keys(errors || {}).forEach(function (name) {
      var target = name === "crop" || name === "grade" ? "product" : name;
      var input = target === "plot_ids" ? doc.getElementById("plot_ids") : form.elements[target];
      var messages = errors[name] || [];
      if (!input || !input.parentNode || !messages.length) { return; }
      var p = el("p", messages.join(" "), "err outbox-err");
      p.id = target + "-outbox-err";
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", p.id);
      input.parentNode.appendChild(p);
    });
  }

  function setupForm(form) {
    var editing = null;
    var key = new URLSearchParams(location.search).get("outbox");
    var ready = key ? get(key).then(function (rec) {
      if (!rec || rec.user !== user) { return; }
      editing = rec;
      Object.keys(rec.fields).forEach(function (name) {
        if (name === "plot_ids") {
          form.querySelectorAll("input[name=plot_ids]").forEach(function (box) {
            box.checked = (rec.fields.plot_ids || []).indexOf(box.value) >= 0;
          });
        } else if (form.elements[name] && rec.fields[name] != null) { form.elements[name].value = rec.fields[name]; }
      });
      if (form.elements.product) { form.elements.product.value = rec.fields.crop + "/" + rec.fields.grade; }
      var banner = doc.getElementById("outbox-editing");
      if (banner) {
        banner.textContent = T.editing + " " + (rec.message || "") + (rec.photo ? " " + T.photo_kept : "");
        banner.hidden = false;
      }
      fieldErrors(form, rec.errors);
    }) : Promise.resolve();

    form.addEventListener("submit", function (event) {
      var data = new FormData(form), product = String(data.get("product") || "");
      var missing = ["product", "quantity_kg", "harvested_on"].filter(function (n) {
        return form.elements[n] && !String(data.get(n) || "").trim();
      });
      event.preventDefault();
      form.querySelectorAll(".outbox-missing").forEach(function (n) { n.remove(); });
      if (missing.length) {
        missing.forEach(function (n) {
          var p = el("p", T.required, "err outbox-missing");
          form.elements[n].parentNode.appendChild(p);
        });
        form.elements[missing[0]].focus();
        return;
      }
      var select = form.elements.product, option = select && select.selectedOptions[0];
      var fields = {
        crop: product.split("/")[0], grade: product.split("/").slice(1).join("/"),
        quantity_kg: String(data.get("quantity_kg")).trim(), harvested_on: String(data.get("harvested_on")),
        collection_point: String(data.get("collection_point") || ""), notes: String(data.get("notes") || ""),
        coop_id: String(data.get("coop_id") || "")
      };
      if (form.querySelector("input[name=plot_ids]")) { fields.plot_ids = data.getAll("plot_ids").map(String); }
      var photo = form.elements.photo && form.elements.photo.files[0];
      var submit = form.querySelector("[type=submit]"), label = submit && submit.textContent;
      if (submit) { submit.disabled = true; submit.textContent = T.sending; }
      var key = newKey();
      shrink(photo).then(function (blob) {
        // A corrected harvest gets a new key: the server stored nothing under the old one.
        var rec = {key: key, user: user, created: editing ? editing.created : Date.now(),
                   fields: fields, label: option ? option.textContent : "",
                   photo: blob || (editing && editing.photo) || null,
                   photoName: blob ? (photo.name || "photo.jpg") : (editing && editing.photoName),
                   status: "pending", message: "", errors: {}};
        // With signal the harvest goes straight to Minga, and a mistake (a bad number, a date
        // later than today) comes back to this form. Only without signal, or when Minga cannot
        // answer now, does it wait on the phone.
        var attempt = navigator.onLine === false ? Promise.resolve({kind: "later"}) : sendNow(rec);
        return attempt.then(function (outcome) {
          if (outcome.kind === "refused") { return outcome; }
          var keep = outcome.kind === "sent" ? Promise.resolve() : put(rec);
          return keep.then(function () { return editing && drop(editing.key); })
            .then(function () { return outcome; });
        });
      }).then(function (outcome) {
        if (outcome.kind === "refused") {
          if (submit) { submit.disabled = false; submit.textContent = label; }
          showRefusal(form, outcome.error);
          return;
        }
        sessionStorage.setItem("minga-outbox-note", outcome.kind === "sent" ? T.sent : T.saved);
        location.href = body.dataset.outboxMine;
      }, function () {
        // No IndexedDB after all (private mode, full disk): post the form as usual, with the
        // key, so that the server stores it once even if the outbox also holds it.
        if (form.elements.idempotency_key) { form.elements.idempotency_key.value = key; }
        form.submit();
      });
    });
    return ready;
  }

  /* ------------------------------------------------------------------ start */

  var form = doc.querySelector("form[data-outbox-form]");
  var start = form ? setupForm(form).catch(function () {}) : Promise.resolve();
  var sendButton = doc.getElementById("outbox-send");
  if (sendButton) { sendButton.addEventListener("click", function () { sendAll(); }); }
  window.addEventListener("online", function () { sendAll(); });
  var shown = sessionStorage.getItem("minga-outbox-note");
  if (shown) { sessionStorage.removeItem("minga-outbox-note"); note(shown); }
  // The outbox after the page has loaded (opening IndexedDB the first time is slow on a
  // cheap phone): the badge shows a moment later, the page itself does not wait.
  function later() { start.then(sendAll); }
  if (doc.readyState === "complete") { later(); } else { window.addEventListener("load", later); }
})();
