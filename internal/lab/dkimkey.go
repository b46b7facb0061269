package lab

// The lab's DKIM keys (RFC 6376, RFC 8463). They are published in the
// dkim.test scenario zone; tests and the lab tour sign messages with them
// (dkim.Sign). They protect nothing: never use them for real mail.
const (
	// DKIMDomain and the selectors under which the keys are published.
	DKIMDomain          = "dkim.test"
	DKIMSelectorRSA     = "rsa2048"
	DKIMSelectorEd25519 = "ed"
	// DKIMRevokedDomain publishes selector DKIMSelectorRSA with an empty
	// p= (a revoked key).
	DKIMRevokedDomain = "dkim-revoked.test"

	// DKIMKeyRSA is a 2048-bit RSA private key, PKCS #8 PEM.
	DKIMKeyRSA = `-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCz2XXbmAyj6eN7
NNuaEJm/z0p9bOamnM8xQM5k9C/H5mr/dDWu7qwQeY5FjJSccywdL4vzROIGOjjW
Nz0Tc0eB3C7s7zCfkIEidbm0HDt9LZwi6BhwyxyzP0sXmnhqOpOjY5Rn8rTVtcqz
44dk9N6TyOMKe/UYJjRitNitpj841XSbGkMMld0vumxePjg0oElhxEkJN9riCdeU
R6LH1YrXMjK0WOGLwzSvC79xQ9untesINX7JKyknG/JLeIdrhyqahEIdtXeRvCuK
RZRupKXaaNfnJQnrfFUObWm9wJkBSYc9EspT8ILNpnssK1BFiNiD2pnA5z5yIfp6
rogqMcABAgMBAAECggEAJsayBICJ6SVaaIwC9PqzS4mz88rxB+czPNlOJrIHQ0BI
vX8eu/K1om+y3wfqWrjyP/Cqae7mFJWk/3q1bmYierswWuFPSHftf7KGMXEM2nZk
/Zmw+1CvhW4WEKa7Y5vxjP7BVpAbsSAa7iIWZQvumUpsuSv0sho6nTWEqhv38Zam
qmY5FMULG+C+8l8gT+kQ3mn9+Ax7Qn95zJAggV+5dzPCLbpIibPZ4ighHl4YPrkU
g2pxPXLcdXPraC8fWDe7cMFxHCQ2zOOYdlljPcNUdUWTOj5mK9y2RZFEKcUclK7m
Ei+soB0YdCTWB2cv5T8ByFhTQ2shZ/F5CXoCLcteyQKBgQD30o3HJQPpCb5H7zmE
0PYu4KccQLhJV0f3m/vUYElP/0qkemp4Iqk8XUD128s3QrI1zZW7hF+aB/o5S7q9
OogiTT6qveceXRcQSqO4vSkNsLgjn5XEfmgzMzgrK6mwT+biBnzepVa+vUepVNyU
vocz/tvn6XzWAGBhDeaC65dWrwKBgQC5yLa+TiYoKkNmy74HubvYNCvqZmbw95gE
o5SCrrWFwq9Ug2hNJcUUOGQlnJZqjHyQuz2psFaz94UixFe5dnmxp7wLu3TeBeUJ
Yr8kuN1Ho0tPS8UJTrvlz1TPWMdnMWBr3q8pZN4YQGUDQt37ZtmDDNZ7IZ4i9mWC
Ll2kEOIATwKBgBzUWbn5DGNnxsMHiWFyDbGWYNpgjQ+7H5wmgT1LljvALybDNu+S
2K01DAGN+C4NjD3GFM0jsRtyIiHYNXkd/gg/hDLItMJLggtbI4CyQLxe+ozqW7no
GqcaJkafZbYlFW7l4lDkWxsFWfjQ7ng/UesyktJ/zw32LUAdJdvFHG3xAoGAS3zf
rAHLBUTu8CTXCQKR7e587ZhAOacQ8MmavWLJxRju7tMaHUa8hlPHdXTjtVVyA8jg
7EMHZ8aqJQ9MacJW/jWeddHsUY5pmt+xtPUcjFAweH7cB8UjGeSdnEaBd0+b0xi/
aX1ftNDtel7AHbeTp+keeReWzrP5WOUIDXMCsYcCgYEAyvdk3ZDJ3Ja73PHg41X3
ir0iOhlkaegWFIdlNijLLDkLirH6MP+X82Y0sng7xmW9wkiYCC178Ns1vNvZLNz2
P++0vKnmMZ1zFTClZGkcobUN4FdcW52yQ3VlD5Zyr2ivmKYjhkIrJraPzok/dc2A
89OyS+6Y8jNAH9/Ozj5pl04=
-----END PRIVATE KEY-----
`
	// DKIMKeyEd25519 is an Ed25519 private key, PKCS #8 PEM.
	DKIMKeyEd25519 = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIHNFVRBwWvk23Ifa9PavYBacoZGV4qQcmGI0GGv/nRI/
-----END PRIVATE KEY-----
`
	// dkimRecordRSA and dkimRecordEd25519 are the public key records, as
	// zone-file TXT text.
	dkimRecordRSA     = `"v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAs9l125gMo+njezTbmhCZv89KfWzmppzPMUDOZPQvx+Zq/3Q1ru6sEHmORYyUnHMsHS+L80TiBjo41jc9E3NHgdwu7O8wn5CBInW5tBw7fS2cIugYcMscsz9LF5p4ajqTo2OUZ/K01b" "XKs+OHZPTek8jjCnv1GCY0YrTYraY/ONV0mxpDDJXdL7psXj44NKBJYcRJCTfa4gnXlEeix9WK1zIytFjhi8M0rwu/cUPbp7XrCDV+ySspJxvyS3iHa4cqmoRCHbV3kbwrikWUbqSl2mjX5yUJ63xVDm1pvcCZAUmHPRLKU/CCzaZ7LCtQRYjYg9qZwOc+ciH6eq6IKj" "HAAQIDAQAB"`
	dkimRecordEd25519 = `"v=DKIM1; k=ed25519; p=shmDdT+obZhGG1NwpB7KfuYI26aRhwbAL5sgcbHs+Yg="`
)
