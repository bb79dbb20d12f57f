#!/usr/bin/perl
# SpamAssassin's Bayes alone, for bench/bayes_accuracy.sh: learn and classify through the
# Perl API with a rule set holding only the Bayes plugin (no network test can run: there is
# no network rule loaded, and local_tests_only is set).
#   sa_bayes.pl DBDIR learn spam|ham FILE...
#   sa_bayes.pl DBDIR classify LABEL FILE...   -> "LABEL probability" per file
# A file SpamAssassin gives no Bayes score is left out of the output and named on stderr,
# with a count at the end (never a made-up 0.5).
use strict;
use warnings;
use Mail::SpamAssassin;

my ($db, $mode, $label, @files) = @ARGV;
die "usage: sa_bayes.pl DBDIR learn|classify LABEL FILE...\n" unless $db && $mode && $label;
mkdir $db;
mkdir "$db/rules";
open(my $rf, '>', "$db/rules/10bayes.cf") or die;
print $rf "loadplugin Mail::SpamAssassin::Plugin::Check\n";
print $rf "loadplugin Mail::SpamAssassin::Plugin::Bayes\n";
# The TLD list, so that URIs are tokenized as SpamAssassin normally does.
if (open(my $tl, '<', '/usr/share/spamassassin/20_aux_tlds.cf')) { local $/; my $t = <$tl>; print $rf $t; }
print $rf "body BAYES_99 eval:check_bayes('0.99', '1.00')\nscore BAYES_99 3.5\n";
close $rf;
my $sa = Mail::SpamAssassin->new({
  rules_filename => "$db/rules",
  site_rules_filename => "$db/rules",
  userprefs_filename => "$db/user_prefs",
  local_tests_only => 1,
  dont_copy_prefs => 1,
  post_config_text => "use_bayes 1\nbayes_auto_learn 0\nbayes_path $db/bayes\n"
                    . "bayes_min_ham_num 1\nbayes_min_spam_num 1\n",
});
$sa->init(1);
sub slurp { local $/; open(my $f, '<', $_[0]) or die "$_[0]: $!"; my $t = <$f>; close $f; $t }
if ($mode eq 'learn') {
  $sa->init_learner({ caller_will_untie => 1 });
  for my $f (@files) {
    my $mail = $sa->parse(slurp($f));
    $sa->learn($mail, undef, $label eq 'spam', 0);
    $mail->finish;
  }
  $sa->rebuild_learner_caches();
  $sa->finish_learner();
} else {
  my $missing = 0;
  for my $f (@files) {
    my $mail = $sa->parse(slurp($f));
    my $st = $sa->check($mail);
    my $p = $st->{bayes_score};
    if (defined $p) {
      printf "%s %s\n", $label, $p;
    } else {
      ++$missing;
      print STDERR "sa_bayes: no Bayes score for $f (left out)\n";
    }
    $st->finish;
    $mail->finish;
  }
  printf STDERR "sa_bayes: %d of %d %s files without a Bayes score\n", $missing,
    scalar(@files), $label if $missing;
}
