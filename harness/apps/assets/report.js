document.querySelectorAll('select.kind-filter').forEach(function (select) {
  select.addEventListener('change', function () {
    var list = document.getElementById(select.dataset.list);
    list.querySelectorAll('details.unit').forEach(function (unit) {
      var kinds = (unit.dataset.kinds || '').split(' ');
      unit.style.display = (!select.value || kinds.indexOf(select.value) >= 0) ? '' : 'none';
    });
  });
});
