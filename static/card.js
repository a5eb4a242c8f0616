/* The card page (templates/pools/card.html): Stripe.js confirms the order's PaymentIntent,
   running 3-D Secure where the bank asks; then Minga checks with Stripe itself. The card's
   number goes to Stripe only. No inline script: the page's Content-Security-Policy. */
(function () {
  'use strict';
  var form = document.getElementById('card-form');
  if (!form) { return; }
  var d = form.dataset;
  var errors = document.getElementById('card-errors');
  var status = document.getElementById('card-status');
  var button = document.getElementById('card-submit');
  if (typeof window.Stripe !== 'function') {
    errors.textContent = d.msgError;
    return;
  }
  var stripe = window.Stripe(d.key);
  var mount = document.getElementById('card-element');
  var card = null;
  if (mount) {
    card = stripe.elements().create('card');
    card.mount(mount);
  }
  var save = document.getElementById('save-card');
  var token = form.querySelector('input[name=csrf_token]');
  button.hidden = false;

  function busy(on) {
    button.disabled = on;
    status.textContent = on ? d.msgBusy : '';
  }

  function fail(message) {
    busy(false);
    errors.textContent = message || d.msgError;
  }

  function post(url, fields) {
    var body = new URLSearchParams(fields);
    if (token) { body.set('csrf_token', token.value); }
    return fetch(url, {
      method: 'POST', credentials: 'same-origin', body: body,
      headers: {'Accept': 'application/json', 'X-CSRFToken': token ? token.value : ''}
    }).then(function (response) {
      return response.json().catch(function () { return {status: 'error'}; });
    });
  }

  function follow(answer) {
    if (answer.redirect) {
      window.location.assign(answer.redirect);
    } else if (answer.status === 'requires_action' && answer.client_secret) {
      return stripe.confirmCardPayment(answer.client_secret).then(finish);
    } else {
      fail(answer.message);
    }
  }

  function declined(error) {
    return error && (error.code === 'card_declined' || error.type === 'card_error' ||
                     error.type === 'validation_error');
  }

  function refused() {  // the bank's confirmation failed or was refused: nothing is held
    return post(form.action, {failed: '1'}).then(follow);
  }

  function finish(result) {  // after confirmCardPayment: Minga checks with Stripe
    if (result.error) {
      if (result.error.code === 'payment_intent_authentication_failure') { return refused(); }
      return fail(declined(result.error) ? d.msgDeclined : (result.error.message || d.msgError));
    }
    var intent = result.paymentIntent || {};
    var last = intent.last_payment_error;
    if (intent.status !== 'requires_capture' && last &&
        last.code === 'payment_intent_authentication_failure') {
      return refused();
    }
    return post(form.action, {}).then(follow);
  }

  function withSetup() {  // the card becomes a PaymentMethod first (saved, or the sandbox)
    return stripe.confirmCardSetup(d.setupSecret, {payment_method: {card: card}})
      .then(function (result) {
        if (result.error) {
          if (declined(result.error)) { return fail(d.msgDeclined); }
          return refused();
        }
        return post(d.setupUrl, {save: save && save.checked ? '1' : '0'}).then(function (a) {
          if (a.code === 'payment_declined') { return fail(a.message); }
          return follow(a);
        });
      });
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    errors.textContent = '';
    busy(true);
    var step;
    if (d.needsAction) {
      step = stripe.confirmCardPayment(d.secret).then(finish);
    } else if (d.flow === 'setup' || (save && save.checked)) {
      step = withSetup();
    } else {
      step = stripe.confirmCardPayment(d.secret, {payment_method: {card: card}}).then(finish);
    }
    Promise.resolve(step).catch(function () { fail(d.msgError); });
  });
}());
