function __mailfunnel_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mailfunnel_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __mailfunnel_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mailfunnel_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __mailfunnel_parse_tokens -S
    set -l unparsed_tokens (__mailfunnel_tokens -pc)
    switch $unparsed_tokens[1]
    case 'mailfunnel'
        __mailfunnel_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'import'
            __mailfunnel_parse_subcommand 2 'config=' 'account=+' 'after-delivery=' 'into=' 'folders=' 'source-password-file=' 'source-password-command=' 'target-password-file=' 'target-password-command=' 'ca-file=' 'tls=' 'envelope-to=' 'source-auth-mechanisms=' 'target-auth-mechanisms=' 'timeout=' 'dry-run' 'wait' 'json' 'ledger=' 'v/verbose' 'quiet' 'log-format=' 'version' 'h/help'
        case 'run'
            __mailfunnel_parse_subcommand 0 'config=' 'ledger=' 'v/verbose' 'quiet' 'log-format=' 'version' 'h/help'
        case 'check'
            __mailfunnel_parse_subcommand 0 'config=' 'ledger=' 'v/verbose' 'quiet' 'log-format=' 'version' 'h/help'
        case 'status'
            __mailfunnel_parse_subcommand 0 'config=' 'json' 'ledger=' 'v/verbose' 'quiet' 'log-format=' 'version' 'h/help'
        case 'help'
            __mailfunnel_parse_subcommand -r 1 'version'
        end
    end
end

function __mailfunnel_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __mailfunnel_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __mailfunnel_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __mailfunnel_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__mailfunnel_tokens -p)
    if test -z "$(__mailfunnel_tokens -t)"
        set -l index (count (__mailfunnel_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'mailfunnel' -f
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel" version' -l 'version' -d 'Show the version.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_positional "mailfunnel" -eq 1' -fa 'import' -d 'One pass: deliver every message not yet delivered from a source into a target.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_positional "mailfunnel" -eq 1' -fa 'run' -d 'The daemon: keep gathering mail from every configured account (polling, or IMAP IDLE push).'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_positional "mailfunnel" -eq 1' -fa 'check' -d 'Validate a config file, log in to every source and target, and say what each server offers and what will be used.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_positional "mailfunnel" -eq 1' -fa 'status' -d 'Show each account\'s messages by state, its last run and its last error, from the ledger.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_positional "mailfunnel" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" config' -l 'config' -d 'Read accounts and targets from this TOML file.' -rfa '(for p in (string match -e -- \'*/\' (commandline -t);or printf \n)*.\'toml\';printf %s\n $p;end;__fish_complete_directories (commandline -t) \'\')'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import"' -l 'account' -d 'With --config: only this account (repeatable).' -rfka ''
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" after-delivery' -l 'after-delivery' -d 'What to do with a source message once its delivery is committed: keep, mark-seen or delete.' -rfka 'keep mark-seen delete'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" into' -l 'into' -d 'Deliver every source folder into this one target folder.' -rfka ''
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" folders' -l 'folders' -d 'Only these source folders, comma-separated (default: all).' -rfka ''
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" source-password-file' -l 'source-password-file' -d 'Read the source\'s password from the first line of this file.' -rF
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" source-password-command' -l 'source-password-command' -d 'Run this command (with /bin/sh) and take the first line it prints as the source\'s password.' -rfka ''
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" target-password-file' -l 'target-password-file' -d 'Read the target\'s password from the first line of this file.' -rF
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" target-password-command' -l 'target-password-command' -d 'Run this command and take the first line it prints as the target\'s password.' -rfka ''
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" ca-file' -l 'ca-file' -d 'Trust the CA certificates in this PEM file as well as the system\'s.' -rF
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" tls' -l 'tls' -d 'For imap:// and pop3:// URLs: starttls (the default; refused if the server does not offer it) or none (plain text).' -rfka 'starttls none'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" envelope-to' -l 'envelope-to' -d 'For an smtp:// target: the envelope recipient.' -rfka ''
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" source-auth-mechanisms' -l 'source-auth-mechanisms' -d 'Log in to the source only in these ways, tried in this order, comma-separated (SCRAM-SHA-256, PLAIN, CRAM-MD5, LOGIN, OAUTHBEARER, XOAUTH2, APOP; default: all the server offers, strongest first).' -rfka ''
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" target-auth-mechanisms' -l 'target-auth-mechanisms' -d 'Log in to the target only in these ways, tried in this order, comma-separated (as --source-auth-mechanisms).' -rfka ''
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" timeout' -l 'timeout' -d 'Give up a connection when its server stays silent this long (default 120s), source and target alike.' -rfka ''
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" dry-run' -l 'dry-run' -d 'List what would be delivered; change nothing.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" wait' -l 'wait' -d 'When another run is working on an account, wait for it to finish instead of leaving the account out (exit 75).'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" json' -l 'json' -d 'Print one JSON object with the figures on stdout at the end.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" ledger' -l 'ledger' -d 'The ledger database (default: $XDG_DATA_HOME/mailfunnel/ledger.sqlite).' -rF
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import"' -l 'verbose' -s 'v' -d 'More detail on stderr (-vv for a trace).'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" quiet' -l 'quiet' -d 'Print nothing but errors.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" log-format' -l 'log-format' -d 'How log lines look on stderr: text, logfmt or json.' -rfka 'text logfmt json'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" version' -l 'version' -d 'Show the version.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel import" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel run" config' -l 'config' -d 'The TOML config file.' -rfa '(for p in (string match -e -- \'*/\' (commandline -t);or printf \n)*.\'toml\';printf %s\n $p;end;__fish_complete_directories (commandline -t) \'\')'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel run" ledger' -l 'ledger' -d 'The ledger database (default: $XDG_DATA_HOME/mailfunnel/ledger.sqlite).' -rF
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel run"' -l 'verbose' -s 'v' -d 'More detail on stderr (-vv for a trace).'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel run" quiet' -l 'quiet' -d 'Print nothing but errors.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel run" log-format' -l 'log-format' -d 'How log lines look on stderr: text, logfmt or json.' -rfka 'text logfmt json'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel run" version' -l 'version' -d 'Show the version.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel run" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel check" config' -l 'config' -d 'The TOML config file.' -rfa '(for p in (string match -e -- \'*/\' (commandline -t);or printf \n)*.\'toml\';printf %s\n $p;end;__fish_complete_directories (commandline -t) \'\')'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel check" ledger' -l 'ledger' -d 'The ledger database (default: $XDG_DATA_HOME/mailfunnel/ledger.sqlite).' -rF
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel check"' -l 'verbose' -s 'v' -d 'More detail on stderr (-vv for a trace).'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel check" quiet' -l 'quiet' -d 'Print nothing but errors.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel check" log-format' -l 'log-format' -d 'How log lines look on stderr: text, logfmt or json.' -rfka 'text logfmt json'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel check" version' -l 'version' -d 'Show the version.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel check" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel status" config' -l 'config' -d 'Take the ledger path from this config file.' -rfa '(for p in (string match -e -- \'*/\' (commandline -t);or printf \n)*.\'toml\';printf %s\n $p;end;__fish_complete_directories (commandline -t) \'\')'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel status" json' -l 'json' -d 'Print JSON instead of a table.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel status" ledger' -l 'ledger' -d 'The ledger database (default: $XDG_DATA_HOME/mailfunnel/ledger.sqlite).' -rF
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel status"' -l 'verbose' -s 'v' -d 'More detail on stderr (-vv for a trace).'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel status" quiet' -l 'quiet' -d 'Print nothing but errors.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel status" log-format' -l 'log-format' -d 'How log lines look on stderr: text, logfmt or json.' -rfka 'text logfmt json'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel status" version' -l 'version' -d 'Show the version.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel status" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mailfunnel' -n '__mailfunnel_should_offer_completions_for_flags_or_options "mailfunnel help" version' -l 'version' -d 'Show the version.'
