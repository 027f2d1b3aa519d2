package sink

import (
	"context"
	"fmt"
	"strings"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/portcullis/portcullis/config"
)

// sendMail sends the mail of one ban over SMTP (go-mail: STARTTLS as m.TLS says, AUTH when a user
// is set). The log lines go in the body, as text: a mail client shows them, nothing runs them.
// Unbans send nothing, as fail2ban's mail actions.
func sendMail(ctx context.Context, m *config.SMTP, c Change, timeout time.Duration) error {
	tags := TagsOf(c, false)
	var b strings.Builder
	fmt.Fprintf(&b, "Hi,\n\nThe IP %s has just been banned by portcullis after %s attempts against %s, for %s (ban %s).\n",
		tags["ip"], tags["failures"], c.Ban.Jail, banLength(c), tags["bancount"])
	if c.Evidence != nil && len(c.Evidence.Matches) > 0 {
		fmt.Fprintf(&b, "\nLines containing failures of %s:\n\n", tags["ip"])
		for _, l := range c.Evidence.Matches {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	b.WriteString("\nRegards,\nportcullis\n")
	return deliverMail(ctx, m, fmt.Sprintf("[portcullis] %s: banned %s from %s", c.Ban.Jail, tags["ip"], tags["fq-hostname"]), b.String(), timeout)
}

// sendDigestMail sends every ban of an interval in one mail, a line per ban.
func sendDigestMail(ctx context.Context, m *config.SMTP, bans []Change, timeout time.Duration) error {
	host := TagsOf(Change{}, false)["fq-hostname"]
	return deliverMail(ctx, m, fmt.Sprintf("[portcullis] %d bans on %s", len(bans), host), digestText(bans)+"\n\nRegards,\nportcullis\n", timeout)
}

// deliverMail sends one plain-text mail as m says.
func deliverMail(ctx context.Context, m *config.SMTP, subject, body string, timeout time.Duration) error {
	msg := mail.NewMsg()
	if err := msg.From(m.From); err != nil {
		return err
	}
	if err := msg.To(m.To...); err != nil {
		return err
	}
	msg.Subject(subject)
	msg.SetDate()
	msg.SetBodyString(mail.TypeTextPlain, body)
	policy := mail.TLSOpportunistic
	switch m.TLS {
	case "mandatory":
		policy = mail.TLSMandatory
	case "none":
		policy = mail.NoTLS
	}
	opts := []mail.Option{mail.WithPort(m.Port), mail.WithTLSPolicy(policy), mail.WithTimeout(timeout)}
	if m.User != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername(m.User), mail.WithPassword(m.Password))
	}
	client, err := mail.NewClient(m.Host, opts...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return client.DialAndSendWithContext(ctx, msg)
}
