/**
 * A real (self-signed, key discarded) CA certificate for configuration tests: caData must be a PEM
 * certificate that parses, not just its armour.
 */
export const CA_PEM = `-----BEGIN CERTIFICATE-----
MIIBjzCCATWgAwIBAgIUZBzyplxTrJBYyy/3acvwRJLKiHUwCgYIKoZIzj0EAwIw
HDEaMBgGA1UEAwwRcG9kd2FyZGVuLXRlc3QtY2EwIBcNMjYxMjAyMTg1MjMwWhgP
MjEyNjExMDgxODUyMzBaMBwxGjAYBgNVBAMMEXBvZHdhcmRlbi10ZXN0LWNhMFkw
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAESK3AcnyLT+ROPrtpHU43JHnT8+3fAY0p
J86MRkPypbHP9E9aBumUVPcLUxlEoKVHnfui+AXS9gJs8qiJv+1e/KNTMFEwHQYD
VR0OBBYEFDmgJ5io3ehcpgKTVsvuSa72B/+0MB8GA1UdIwQYMBaAFDmgJ5io3ehc
pgKTVsvuSa72B/+0MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIh
AJtag1Hc86v1pj/lSXxpdfuL2DEVA1cfIncU+rVupyCJAiACLCH+SKWjWwBevbRF
Bmk+3KREtvH9ojbFJRpRP+HzYA==
-----END CERTIFICATE-----
`;
export const CA_DATA = Buffer.from(CA_PEM).toString('base64');
