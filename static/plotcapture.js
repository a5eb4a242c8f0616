/* Minga plot capture in the field: "I am at my plot" takes one GPS position, "walk the
   boundary" records positions (watchPosition) while the farmer or technician walks around the
   plot and closes the polygon on "Finish". Works without signal: each capture goes into the
   phone's outbox (IndexedDB "minga-outbox", store "plots", beside the listings' store of
   outbox.js) with a fresh client key, and is sent to the page's JSON endpoint (#capture
   data-url) with that key as Idempotency-Key and a fresh CSRF token (data-session), on page
   load, on the `online` event and from "Send now". The same key sent twice is stored once.
   A capture Minga refuses (out of range, crossing itself...) stays in the list as refused,
   with the message, and is not sent again. Progressive enhancement: without this script (or
   without a GPS or IndexedDB) the section stays hidden and the typed forms are the way in.
   Words come from the page (#capture-i18n). */
(function () {
  "use strict";
  var doc = document;
  var section = doc.getElementById("capture"), i18n = doc.getElementById("capture-i18n");
  if (!section || !i18n || !navigator.geolocation || !window.indexedDB || !window.fetch ||
      !window.Promise) { return; }
  var T = JSON.parse(i18n.textContent);
  var user = Number(section.dataset.user), plotId = Number(section.dataset.plot);
  var STORE = "plots";

  /* ------------------------------------------------------------------ the outbox */

  // The outbox's database and keys come from outbox.js (loaded before this script).
  if (!window.mingaOutbox) { return; }
  var box = window.mingaOutbox.store(STORE, user);
  var mine = box.mine, put = box.put, drop = box.drop;
  function newKey() { return window.mingaOutbox.newKey("plot"); }

  /* ------------------------------------------------------------------ showing */

  function el(tag, text, cls) {
    var node = doc.createElement(tag);
    if (text) { node.textContent = text; }
    if (cls) { node.className = cls; }
    return node;
  }

  function note(text) {
    var p = doc.getElementById("capture-note");
    if (!p) { return; }
    p.textContent = text || "";
    p.hidden = !text;
  }

  function shown(result) {
    // What Minga answered for a capture just sent: saved, and the warnings to look at.
    var box = doc.getElementById("capture-result"), list = doc.getElementById("capture-warnings");
    doc.getElementById("capture-sent").textContent = result.message || "";
    list.textContent = "";
    (result.warnings || []).forEach(function (w) { list.appendChild(el("li", w)); });
    if ((result.warnings || []).length) {
      list.insertBefore(el("li", T.warnings, "status"), list.firstChild);
    }
    box.hidden = false;
  }

  function render(busy) {
    return mine().then(function (recs) {
      var box = doc.getElementById("capture-outbox"), list = doc.getElementById("capture-list");
      box.hidden = !recs.length;
      list.textContent = "";
      recs.forEach(function (rec) {
        var li = el("li");
        li.appendChild(el("strong", rec.plotName));
        li.appendChild(doc.createTextNode(" — " + (rec.source === "gps_point" ? T.point :
          T.walk.replace("{n}", rec.positions.length)) + " · " +
          new Date(rec.created).toLocaleString(doc.documentElement.lang || undefined)));
        li.appendChild(el("br"));
        if (rec.status === "refused") {
          li.appendChild(el("span", T.refused, "status status-refused"));
          li.appendChild(el("p", rec.message, "err"));
        } else {
          li.appendChild(el("span", busy ? T.sending : T.pending, "status status-pending"));
          li.appendChild(doc.createTextNode(" "));
        }
        var del = el("button", T.delete, "link");
        del.type = "button";
        del.addEventListener("click", function () {
          if (window.confirm(T.confirm_delete)) { drop(rec.key).then(function () { render(); }); }
        });
        li.appendChild(del);
        list.appendChild(li);
      });
    }).catch(function () {});
  }

  /* ------------------------------------------------------------------ sending */

  function session() {
    return fetch(section.dataset.session, {credentials: "same-origin", cache: "no-store",
                                           headers: {"Accept": "application/json"}})
      .then(function (r) {
        if (r.status === 401) { note(T.login); return null; }
        return r.ok ? r.json() : null;
      }).then(function (s) { return s && s.user_id === user ? s.csrf_token : null; });
  }

  var sending = null;
  function sendAll() {
    if (sending) { return sending.then(sendAll); }
    sending = mine().then(function (all) {
      var queue = all.filter(function (r) { return r.status !== "refused"; });
      if (!queue.length) { return; }
      if (navigator.onLine === false) { note(T.offline); return; }
      note("");
      render(true);
      return session().then(function (token) {
        if (!token) { return; }
        return queue.reduce(function (chain, rec) {
          return chain.then(function (go) { return go && sendOne(rec, token); });
        }, Promise.resolve(true));
      });
    }).catch(function () { note(T.failed); }).then(function () {
      sending = null;
      return render();
    });
    return sending;
  }

  function sendOne(rec, token) {
    return fetch(rec.url, {
      method: "POST", credentials: "same-origin",
      body: JSON.stringify({source: rec.source, positions: rec.positions, accuracy_m: rec.accuracy}),
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "Idempotency-Key": rec.key, "X-CSRFToken": token}
    }).then(function (r) {
      if (r.status === 200 || r.status === 201) {
        return r.json().then(function (answer) {
          note("");
          shown(answer);
          return drop(rec.key);
        }).then(function () {
          if (rec.plot === plotId) { refreshMap(); }
          return true;
        });
      }
      if (r.status === 401) { note(T.login); return false; }
      if (r.status === 403 || r.status === 404 || r.status === 422) {
        // Minga read it and said no: kept as refused, with the reason, never sent again.
        return r.json().catch(function () { return {}; }).then(function (answer) {
          var err = answer.error || {};
          rec.status = "refused";
          rec.message = err.message || (T.refused + " " + r.status);
          return put(rec);
        }).then(function () { return true; });
      }
      note(T.failed);   // a stale token, too many requests, Minga failing: later
      return false;
    }, function () { note(navigator.onLine === false ? T.offline : T.failed); return false; });
  }

  function refreshMap() {
    // The plot's map drawn again by the server, with the geometry just sent.
    var map = doc.querySelector("main .plotmap");
    if (!map) { return; }
    fetch(location.pathname, {credentials: "same-origin", cache: "no-store",
                              headers: {"Accept": "text/html"}}).then(function (r) {
      return r.ok && !r.redirected ? r.text() : null;
    }).then(function (html) {
      var fresh = html && new DOMParser().parseFromString(html, "text/html")
        .querySelector("main .plotmap");
      if (fresh) { map.replaceWith(doc.importNode(fresh, true)); }
    }).catch(function () {});
  }

  function keep(source, positions, accuracy) {
    var rec = {key: newKey(), user: user, plot: plotId, plotName: section.dataset.plotName,
               url: section.dataset.url, created: Date.now(), source: source,
               positions: positions, accuracy: accuracy, status: "pending", message: ""};
    return put(rec).then(function () {
      doc.getElementById("capture-result").hidden = true;
      note(T.saved);
      return render();
    }).then(sendAll);
  }

  /* ------------------------------------------------------------------ the GPS */

  var OPTIONS = {enableHighAccuracy: true, maximumAge: 0, timeout: 60000};

  function pos(c) {
    // [longitude, latitude] as GeoJSON wants them, with 7 decimals (about 1 cm).
    return [c.longitude.toFixed(7), c.latitude.toFixed(7)];
  }

  function gpsError(err) {
    note(err && err.code === 1 ? T.denied : T.no_gps);
  }

  function metres(a, b) {
    var R = 6371008.8, rad = Math.PI / 180;
    var dlat = (b[1] - a[1]) * rad, dlon = (b[0] - a[0]) * rad;
    var h = Math.sin(dlat / 2) * Math.sin(dlat / 2) + Math.cos(a[1] * rad) *
      Math.cos(b[1] * rad) * Math.sin(dlon / 2) * Math.sin(dlon / 2);
    return 2 * R * Math.asin(Math.sqrt(h));
  }

  var pointButton = doc.getElementById("capture-point");
  var walkButton = doc.getElementById("capture-walk");
  var walking = doc.getElementById("capture-walking");
  var progress = doc.getElementById("capture-progress");

  pointButton.addEventListener("click", function () {
    note(T.locating);
    pointButton.disabled = true;
    navigator.geolocation.getCurrentPosition(function (p) {
      pointButton.disabled = false;
      keep("gps_point", [pos(p.coords)], Math.ceil(p.coords.accuracy));
    }, function (err) { pointButton.disabled = false; gpsError(err); }, OPTIONS);
  });

  var watch = null, walked = [], worst = 0, distance = 0;

  function showProgress() {
    progress.textContent = T.progress.replace("{n}", walked.length)
      .replace("{m}", Math.round(distance)).replace("{a}", Math.ceil(worst));
  }

  function stop() {
    if (watch !== null) { navigator.geolocation.clearWatch(watch); }
    watch = null;
    walking.hidden = true;
    walkButton.disabled = pointButton.disabled = false;
  }

  walkButton.addEventListener("click", function () {
    walked = []; worst = 0; distance = 0;
    walking.hidden = false;
    walkButton.disabled = pointButton.disabled = true;
    note(T.walking);
    showProgress();
    watch = navigator.geolocation.watchPosition(function (p) {
      var here = pos(p.coords), last = walked[walked.length - 1];
      if (last && last[0] === here[0] && last[1] === here[1]) { return; }
      if (last) { distance += metres(last.map(Number), here.map(Number)); }
      walked.push(here);
      worst = Math.max(worst, p.coords.accuracy || 0);
      showProgress();
    }, gpsError, OPTIONS);
  });

  doc.getElementById("capture-finish").addEventListener("click", function () {
    var ring = walked.slice();
    if (ring.length > 1 && ring[0][0] === ring[ring.length - 1][0] &&
        ring[0][1] === ring[ring.length - 1][1]) { ring.pop(); }
    if (ring.length < 3) { note(T.few); return; }
    stop();
    ring.push(ring[0]);   // the boundary closes where it started
    keep("gps_walk", ring, Math.ceil(worst));
  });

  doc.getElementById("capture-cancel").addEventListener("click", function () {
    stop();
    note("");
  });

  /* ------------------------------------------------------------------ start */

  section.hidden = false;
  doc.getElementById("capture-send").addEventListener("click", function () { sendAll(); });
  window.addEventListener("online", function () { sendAll(); });
  function later() { render().then(sendAll); }
  if (doc.readyState === "complete") { later(); } else { window.addEventListener("load", later); }
})();
