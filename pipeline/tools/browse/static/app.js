// Small conveniences only; every page works without them.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Takedown: the radio buttons choose what the (read-only) value field holds; the button waits for the checkbox.
  const form = document.getElementById("takedown");
  if (form) {
    const value = document.getElementById("takedown-value");
    form.querySelectorAll("input[name=kind]").forEach((radio) => {
      radio.addEventListener("change", () => { value.value = radio.dataset.value; });
    });
    const confirm = document.getElementById("takedown-confirm");
    const submit = document.getElementById("takedown-submit");
    confirm.addEventListener("change", () => { submit.disabled = !confirm.checked; });
  }
  // Filters apply as soon as a select changes.
  document.querySelectorAll("#filters select").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });
  // SQL box: Ctrl+Enter runs the query.
  const sql = document.getElementById("sql");
  if (sql) {
    sql.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); sql.form.submit(); }
    });
  }
});
