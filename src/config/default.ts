// The embedded default config used by `sidecar run` with no file: the classic sidecar ports.
export const DEFAULT_CONFIG_YAML = `# sidecar embedded default
admin:
  address: 127.0.0.1
  port: \${SIDECAR_ADMIN_PORT:-15000}
listeners:
  - name: inbound
    address: 127.0.0.1
    port: \${SIDECAR_INBOUND_PORT:-15006}
    mode: reverse
    routes:
      - name: local_app
        match: { prefix: / }
        cluster: local_app
  - name: outbound
    address: 127.0.0.1
    port: \${SIDECAR_OUTBOUND_PORT:-15001}
    mode: forward
    hop_marker: ignore   # the app sends here, not a sidecar: its x-sidecar-hop is never believed
    forward:
      allow_passthrough: true
      allowed_hosts: ["*"]
      allow_connect: true
clusters:
  - name: local_app
    endpoints: ["\${SIDECAR_APP_ADDRESS:-127.0.0.1:8080}"]
`;
