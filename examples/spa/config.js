// The example's settings. Each can be overridden on the first page load with a query
// parameter (kept in sessionStorage for the rest of the visit, so it survives the round trip
// through the identity provider):
//   http://127.0.0.1:5173/?issuer=http://127.0.0.1:8080&client_id=spa&api=http://127.0.0.1:8081
export default {
  // Latchkey's issuer (its discovery document is at <issuer>/.well-known/openid-configuration).
  issuer: 'http://127.0.0.1:8080',
  // The public client registered for this app (see examples/README.md).
  clientId: 'spa',
  // The example resource server (examples/resource-server), called with the access token.
  api: 'http://127.0.0.1:8081',
  scope: 'openid profile email',
};
