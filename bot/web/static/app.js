// Progressive enhancement only: every page works without this file.
document.querySelectorAll("button.copy").forEach((button) => {
  button.addEventListener("click", async () => {
    const field = document.getElementById(button.dataset.copy);
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
    } catch (e) {
      document.execCommand("copy");
    }
    button.textContent = button.dataset.done;
  });
});
document.querySelectorAll("a.print").forEach((link) => {
  link.hidden = false;
  link.addEventListener("click", (event) => { event.preventDefault(); window.print(); });
});
