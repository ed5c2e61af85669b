// A real OpenID Connect provider (the certified npm `oidc-provider`) for the OAuth browser
// test: its own login and consent pages (devInteractions), one client (the dxc-server
// broker) and one test user. Prints {"issuer"} once it listens.
//
// argv[2]: {port, clientId, clientSecret, redirectUri, user: {login, password, email, name}}
import Provider from 'oidc-provider';

const { port, clientId, clientSecret, redirectUri, user } = JSON.parse(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  cookies: { keys: ['dxc-e2e-cookie-key'] },
  // The test user: the dev login page accepts any name, so the account lookup is the gate.
  async findAccount(ctx, id) {
    if (id !== user.login) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: user.email, email_verified: true, name: user.name };
      },
    };
  },
});
provider.listen(port, '127.0.0.1', () => console.log(JSON.stringify({ issuer })));
