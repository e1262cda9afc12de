// report.html's only script: the filter bar, opening a scenario linked to by #id, and
// opening every scenario for printing. The page reads fine without it. Its SHA-256 is
// in the page's Content-Security-Policy (`SCRIPT_HASH` in html.rs; a unit test checks it).
(function () {
  'use strict';
  var form = document.getElementById('filters');
  var scenarios = Array.prototype.slice.call(document.querySelectorAll('details.scenario'));

  function openLinked() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    var target = id ? document.getElementById(id) : null;
    if (target && target.tagName === 'DETAILS') {
      target.hidden = false;
      target.open = true;
    }
  }
  window.addEventListener('hashchange', openLinked);
  openLinked();

  var openBeforePrint = [];
  window.addEventListener('beforeprint', function () {
    openBeforePrint = scenarios.map(function (s) { return s.open; });
    scenarios.forEach(function (s) { s.open = true; });
  });
  window.addEventListener('afterprint', function () {
    scenarios.forEach(function (s, i) { s.open = openBeforePrint[i]; });
  });

  if (form) {
    var query = document.getElementById('q');
    var boxes = Array.prototype.slice.call(form.querySelectorAll('input[name="status"]'));
    var failuresOnly = document.getElementById('failures-only');
    var shown = document.getElementById('shown');
    var none = document.getElementById('none');

    var apply = function () {
      var q = query.value.trim().toLowerCase();
      var allowed = {};
      boxes.forEach(function (b) { allowed[b.value] = b.checked; });
      var count = 0;
      scenarios.forEach(function (s) {
        var status = s.getAttribute('data-status');
        var failing = status === 'failed' || status === 'error';
        var show = allowed[status] === true &&
          (!failuresOnly.checked || failing) &&
          (q === '' || s.getAttribute('data-search').indexOf(q) !== -1);
        s.hidden = !show;
        if (show) { count += 1; }
      });
      shown.textContent = 'showing ' + count + ' of ' + scenarios.length;
      none.hidden = count !== 0;
    };
    form.addEventListener('input', apply);
    form.addEventListener('change', apply);
    form.addEventListener('submit', function (e) { e.preventDefault(); });
    form.hidden = false;
    apply();
  }

  document.body.setAttribute('data-ready', '1');
}());
