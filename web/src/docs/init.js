// Renders the OpenAPI document of this server (/v1/openapi.json) with Swagger UI, served from
// this server too (no CDN), so /docs works on a contact center's closed network.
window.addEventListener("load", () => {
  window.SwaggerUIBundle({ url: "/v1/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
