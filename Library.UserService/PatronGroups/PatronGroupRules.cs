using Library.ServiceDefaults;
using Library.UserService.Data;

namespace Library.UserService.PatronGroups;

/// <summary>What a valid patron group looks like: the rules, with no I/O.</summary>
public static class PatronGroupRules
{
    public const string NameTooLong = "name must have at most 50 characters.";
    public const string DescriptionTooLong = "description must have at most 500 characters.";

    public static Dictionary<string, string[]> Validate(string? name, string? description)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(name))
        {
            errors["name"] = ["name is required."];
        }
        else if (name.Trim().Length > PatronGroup.MaxNameLength)
        {
            errors["name"] = [$"name must have at most {PatronGroup.MaxNameLength} characters."];
        }
        else if (TextInput.HasControlCharacters(name))
        {
            errors["name"] = TextInput.ControlCharactersError("name");
        }
        if (description is not null)
        {
            if (description.Trim().Length > PatronGroup.MaxDescriptionLength)
            {
                errors["description"] = [$"description must have at most {PatronGroup.MaxDescriptionLength} characters."];
            }
            else if (TextInput.HasControlCharacters(description, multiline: true))
            {
                errors["description"] = TextInput.ControlCharactersError("description");
            }
        }
        return errors;
    }

    /// <summary>Trimmed; blank is no description.</summary>
    public static string? CleanDescription(string? description) =>
        string.IsNullOrWhiteSpace(description) ? null : description.Trim();
}
